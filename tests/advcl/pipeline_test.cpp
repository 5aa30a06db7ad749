// The pretraining stages run end to end through their command-line entry
// points on a tiny CIFAR-10-format dataset: SimCLR -> pseudo-labels -> AdvCL
// pretraining, and an interrupted run resumes to exactly the same weights.
#include <gtest/gtest.h>

#include <filesystem>

#include "advcl/cli/commands.h"
#include "advcl/pretrain/pseudo_labels.h"
#include "engine/autocast.h"
#include "engine/counters.h"
#include "engine/cpu_features.h"
#include "engine/safetensors.h"
#include "tests/advcl/pretrain_test_util.h"
#include "tests/datasets/cifar_test_util.h"
#include "tests/golden_util.h"

using namespace advcl;
using data::testing::TempDir;
using pretrain_test::run;
using pretrain_test::write_tiny_cifar;

namespace {

std::vector<std::string> pretrain_args(const std::string& data, const std::string& labels, const std::string& out,
                                       int epochs) {
  return {"pretrain", "--data", data, "--labels", labels, "--out", out, "--width", "4", "--batch-size", "16",
          "--epoch", std::to_string(epochs), "--iter", "2", "--workers", "1", "--log-every", "0", "--seed", "3"};
}

}  // namespace

TEST(PretrainPipeline, SimclrPseudoLabelsPretrainAndExactResume) {
  TempDir tmp;
  std::string data = tmp / "cifar";
  write_tiny_cifar(data);

  ASSERT_EQ(run({"simclr", "--data", data, "--out", tmp / "simclr", "--width", "4", "--batch-size", "16", "--epoch",
                 "1", "--workers", "1", "--log-every", "0"},
                cli::cmd_simclr),
            0);
  ASSERT_TRUE(std::filesystem::exists(tmp / "simclr/last.safetensors"));
  ASSERT_EQ(run({"pseudo-labels", "--encoder", tmp / "simclr/last.safetensors", "--data", data, "--k", "2,5",
                 "--out", tmp / "labels.safetensors"},
                cli::cmd_pseudo_labels),
            0);
  method::PseudoLabels labels = method::load_pseudo_labels(tmp / "labels.safetensors");
  ASSERT_EQ(labels.ks, (std::vector<int64_t>{2, 5}));
  labels.check(40, "labels");

  // Two epochs straight, and one epoch (stopped) then resumed: identical
  // weights, optimiser state and running statistics.
  ASSERT_EQ(run(pretrain_args(data, tmp / "labels.safetensors", tmp / "straight", 2), cli::cmd_pretrain), 0);
  std::vector<std::string> first = pretrain_args(data, tmp / "labels.safetensors", tmp / "resumed", 2);
  first.insert(first.end(), {"--stop-epoch", "1"});
  ASSERT_EQ(run(first, cli::cmd_pretrain), 0);
  EXPECT_EQ(load_safetensors(tmp / "resumed/last.safetensors").metadata.at("loader_epoch"), "1");
  ASSERT_EQ(run(pretrain_args(data, tmp / "labels.safetensors", tmp / "resumed", 2), cli::cmd_pretrain), 0);
  SafetensorsFile a = load_safetensors(tmp / "straight/last.safetensors");
  SafetensorsFile b = load_safetensors(tmp / "resumed/last.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (auto& [name, t] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    EXPECT_TRUE(testing_util::close(name, b.tensors.at(name), t, {0, 0})) << "resumed run differs";
  }
  EXPECT_EQ(a.metadata.at("loader_epoch"), "2");
  EXPECT_TRUE(std::filesystem::exists(tmp / "straight/metrics.jsonl"));
}

TEST(PretrainPipeline, ClearErrorsForBadInputs) {
  TempDir tmp;
  std::string data = tmp / "cifar";
  write_tiny_cifar(data);
  // Labels for another dataset size.
  method::PseudoLabels wrong{{2}, {std::vector<int32_t>(7, 0)}, "test"};
  method::save_pseudo_labels(tmp / "wrong.safetensors", wrong);
  try {
    run(pretrain_args(data, tmp / "wrong.safetensors", tmp / "out", 1), cli::cmd_pretrain);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("7 labels"), std::string::npos) << e.what();
  }
  EXPECT_THROW(run(pretrain_args(data, tmp / "missing.safetensors", tmp / "out", 1), cli::cmd_pretrain), Error);
  // A bad option value is CLI11's error exit, not a crash.
  EXPECT_NE(run({"pretrain", "--data", data, "--epoch", "x"}, cli::cmd_pretrain), 0);
}

TEST(PseudoLabelImport, ReadsTheReferencePickleFormat) {
  std::string path = testing_util::source_path("tests/golden/reference_pseudo_labels_sample.pkl");
  ASSERT_TRUE(testing_util::readable(path)) << testing_util::missing_file_message(path);
  method::PseudoLabels l = method::load_pseudo_labels(path);
  ASSERT_EQ(l.ks, (std::vector<int64_t>{2, 10, 50, 100, 500}));
  ASSERT_EQ(l.size(), 40);
  for (size_t h = 0; h < l.ks.size(); ++h)
    for (int i = 0; i < 40; ++i) EXPECT_EQ(l.train[h][i], i * 7 % l.ks[h]);
  l.check(40, path);
  EXPECT_THROW(l.check(50000, path), Error);
  // Round trip through our format.
  TempDir tmp;
  method::save_pseudo_labels(tmp / "ours.safetensors", l);
  method::PseudoLabels back = method::load_pseudo_labels(tmp / "ours.safetensors");
  EXPECT_EQ(back.ks, l.ks);
  EXPECT_EQ(back.train, l.train);
}

// --precision bf16 (where the CPU has native bf16): SimCLR and AdvCL
// pretraining run their steps' convolutions in bf16 (the guard lives as long
// as the run), record bf16 in their checkpoints, and leave autocast off.
TEST(PretrainPipeline, Bf16SimclrAndPretrainRunUnderAutocast) {
  if (!cpu::bf16_support().native()) GTEST_SKIP() << "no native bf16 here: " << cpu::bf16_support().missing();
  TempDir tmp;
  std::string data = tmp / "cifar";
  write_tiny_cifar(data);
  int64_t before = counters::get("conv2d.bf16");
  ASSERT_EQ(run({"simclr", "--data", data, "--out", tmp / "simclr", "--width", "4", "--batch-size", "16", "--epoch",
                 "1", "--workers", "1", "--log-every", "0", "--precision", "bf16"},
                cli::cmd_simclr),
            0);
  EXPECT_FALSE(autocast::enabled()) << "simclr left autocast on";
  EXPECT_GT(counters::get("conv2d.bf16"), before) << "simclr ran no bf16 convolution";
  EXPECT_EQ(load_safetensors(tmp / "simclr/last.safetensors").metadata.at("precision"), "bf16");
  ASSERT_EQ(run({"pseudo-labels", "--encoder", tmp / "simclr/last.safetensors", "--data", data, "--k", "2,5",
                 "--out", tmp / "labels.safetensors"},
                cli::cmd_pseudo_labels),
            0);
  before = counters::get("conv2d.bf16");
  std::vector<std::string> args = pretrain_args(data, tmp / "labels.safetensors", tmp / "pre", 1);
  args.insert(args.end(), {"--precision", "bf16"});
  ASSERT_EQ(run(args, cli::cmd_pretrain), 0);
  EXPECT_FALSE(autocast::enabled()) << "pretrain left autocast on";
  EXPECT_GT(counters::get("conv2d.bf16"), before) << "pretrain ran no bf16 convolution";
  SafetensorsFile f = load_safetensors(tmp / "pre/last.safetensors");
  EXPECT_EQ(f.metadata.at("precision"), "bf16");
  for (auto& [name, t] : f.tensors) {
    if (is_floating(t.dtype())) {
      EXPECT_EQ(t.dtype(), DType::Float32) << name << ": checkpoints stay float32";
    }
  }
}
