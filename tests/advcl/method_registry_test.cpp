// The pretraining method registry (advcl/pretrain/method.h): a method added
// with one line runs through `advcl pretrain --method`, checkpoints its BN
// set names, and resumes exactly; the built-in methods and their ablations
// run the same way; bad registrations and names fail clearly.
#include <gtest/gtest.h>

#include <filesystem>

#include "advcl/cli/commands.h"
#include "advcl/pretrain/method.h"
#include "advcl/pretrain/advcl_views.h"
#include "advcl/pretrain/simclr_step.h"
#include "engine/safetensors.h"
#include "tests/advcl/pretrain_test_util.h"
#include "tests/datasets/cifar_test_util.h"
#include "tests/golden_util.h"

using namespace advcl;
using data::testing::TempDir;
using pretrain_test::run;
using pretrain_test::write_tiny_cifar;

namespace {

// A method written for this test: SimCLR's step on the pair of SimCLR views,
// with one BN set of its own name.
method::PretrainMethod plain_contrastive() {
  method::PretrainMethod m;
  m.name = "test-plain";
  m.summary = "SimCLR through the registry (a test method)";
  m.bn_sets = {"clean"};
  m.pseudo_labels = [](const method::PretrainSettings&) { return false; };
  m.views = [](const views::SimclrOptions& o) { return views::make_simclr_views(o); };
  m.step = [](method::ContrastiveModel& model, nn::Sgd& sgd, const method::PretrainBatch& b,
              const method::PretrainSettings& s, method::StepContext& ctx) {
    method::SimclrStepOptions opt;
    opt.temperature = s.temperature;
    return method::StepValues{{"loss", method::simclr_step(model, sgd, b.views.at(0), b.views.at(1), opt, ctx)}};
  };
  return m;
}

std::vector<std::string> args(const std::string& data, const std::string& out, int epochs,
                              std::vector<std::string> extra) {
  std::vector<std::string> a{"pretrain", "--data", data, "--out", out, "--width", "4", "--batch-size", "16",
                             "--epoch", std::to_string(epochs), "--iter", "1", "--workers", "1", "--log-every", "0",
                             "--seed", "5"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// Two epochs straight and one epoch then resumed to two give the same tensors, bit for bit.
void expect_exact_resume(const std::string& data, const std::string& dir, const std::vector<std::string>& extra) {
  ASSERT_EQ(run(args(data, dir + "/straight", 2, extra), cli::cmd_pretrain), 0);
  std::vector<std::string> first = args(data, dir + "/resumed", 2, extra);
  first.insert(first.end(), {"--stop-epoch", "1"});
  ASSERT_EQ(run(first, cli::cmd_pretrain), 0);
  ASSERT_EQ(run(args(data, dir + "/resumed", 2, extra), cli::cmd_pretrain), 0);
  SafetensorsFile a = load_safetensors(dir + "/straight/last.safetensors");
  SafetensorsFile b = load_safetensors(dir + "/resumed/last.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_TRUE(testing_util::close(name, b.tensors.at(name), t, {0, 0})) << "resumed run differs";
  }
  EXPECT_EQ(a.metadata.at("loader_epoch"), "2");
}

}  // namespace

TEST(MethodRegistry, AMethodRegisteredInOneLineTrainsAndResumes) {
  method::register_method(plain_contrastive());  // the one line
  TempDir tmp;
  std::string data = tmp / "cifar";
  write_tiny_cifar(data);
  expect_exact_resume(data, tmp / "plain", {"--method", "test-plain"});
  SafetensorsFile f = load_safetensors(tmp / "plain/straight/last.safetensors");
  EXPECT_EQ(f.metadata.at("pretrain.method"), "test-plain");
  EXPECT_EQ(f.metadata.at("model.bn_set_names"), "clean");
  EXPECT_EQ(f.metadata.at("model.bn_sets"), "1");
  // A resumed run that changes the method is refused, naming --method (it would train another model).
  try {
    run(args(data, tmp / "plain/straight", 2, {"--method", "advcl", "--no-pseudo-labels"}), cli::cmd_pretrain);
    ADD_FAILURE() << "a resume with another --method was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--method: 'test-plain' in the checkpoint, 'advcl' now"), std::string::npos)
        << e.what();
  }
}

TEST(MethodRegistry, AdvclWithoutPseudoLabelsAndWithoutTheHighFrequencyViewTrain) {
  TempDir tmp;
  std::string data = tmp / "cifar";
  write_tiny_cifar(data);
  // The pseudo-label ablation needs no --labels; its checkpoint has AdvCL's three sets and no fc heads.
  expect_exact_resume(data, tmp / "nopl", {"--no-pseudo-labels"});
  SafetensorsFile f = load_safetensors(tmp / "nopl/straight/last.safetensors");
  EXPECT_EQ(f.metadata.at("model.bn_set_names"), "normal,pgd,pgd_ce");
  EXPECT_EQ(f.metadata.at("model.pseudo_classes"), "");
  EXPECT_EQ(f.tensors.count("fc_002.weight"), 0u);
  // Both ablations at once train, and the high-frequency view changes what
  // is learnt: one epoch with and without it ends at different weights.
  ASSERT_EQ(run(args(data, tmp / "both", 1, {"--no-pseudo-labels", "--no-hfc"}), cli::cmd_pretrain), 0);
  ASSERT_EQ(run(args(data, tmp / "nopl1", 1, {"--no-pseudo-labels"}), cli::cmd_pretrain), 0);
  SafetensorsFile both = load_safetensors(tmp / "both/last.safetensors");
  SafetensorsFile nopl = load_safetensors(tmp / "nopl1/last.safetensors");
  EXPECT_FALSE(testing_util::close("conv1.weight", both.tensors.at("conv1.weight"), nopl.tensors.at("conv1.weight"),
                                   {0, 0}));
}

TEST(MethodRegistry, AclTrainsThroughPretrainAndResumes) {
  TempDir tmp;
  std::string data = tmp / "cifar";
  write_tiny_cifar(data);
  expect_exact_resume(data, tmp / "acl", {"--method", "acl"});
  SafetensorsFile f = load_safetensors(tmp / "acl/straight/last.safetensors");
  EXPECT_EQ(f.metadata.at("pretrain.method"), "acl");
  EXPECT_EQ(f.metadata.at("model.bn_set_names"), "normal,pgd");
  EXPECT_EQ(f.tensors.count("bn1.bn_list.1.weight"), 1u);
  EXPECT_EQ(f.tensors.count("bn1.bn_list.2.weight"), 0u);
  // Finetuning and export take its `pgd` set by name.
  ASSERT_EQ(run({"export", "--ckpt", tmp / "acl/straight/last.safetensors", "--out", tmp / "acl_pgd.safetensors",
                 "--bn-set", "pgd"},
                cli::cmd_export),
            0);
  EXPECT_THROW(run({"export", "--ckpt", tmp / "acl/straight/last.safetensors", "--out", tmp / "x.safetensors",
                    "--bn-set", "pgd_ce"},
                   cli::cmd_export),
               Error);
}

TEST(MethodRegistry, ClearErrors) {
  EXPECT_THROW(method::find_method("nope"), Error);
  try {
    method::find_method("nope");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("advcl"), std::string::npos) << e.what();  // lists the known
  }
  method::PretrainMethod dup = method::find_method("advcl");
  EXPECT_THROW(method::register_method(dup), Error);  // the name exists
  method::PretrainMethod no_sets = plain_contrastive();
  no_sets.name = "test-no-sets";
  no_sets.bn_sets.clear();
  EXPECT_THROW(method::register_method(no_sets), Error);
  method::PretrainMethod no_step = plain_contrastive();
  no_step.name = "test-no-step";
  no_step.step = nullptr;
  EXPECT_THROW(method::register_method(no_step), Error);

  TempDir tmp;
  std::string data = tmp / "cifar";
  write_tiny_cifar(data);
  // AdvCL without --labels, and an ablation flag on another method.
  EXPECT_THROW(run(args(data, tmp / "a", 1, {}), cli::cmd_pretrain), Error);
  EXPECT_THROW(run(args(data, tmp / "b", 1, {"--method", "acl", "--no-hfc"}), cli::cmd_pretrain), Error);
}
