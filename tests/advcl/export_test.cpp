// `advcl export`: a 3-set checkpoint's encoder with one BN set, reloaded,
// computes the source model's features with that set; the reference-finetune
// format has exactly the reference finetuning model's names.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "advcl/cli/commands.h"
#include "advcl/pretrain/advcl_step.h"
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/run/export_names.h"
#include "advcl/run/model_io.h"
#include "engine/autograd.h"
#include "engine/ops/random.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/resnet.h"
#include "tests/datasets/dataset_test_util.h"
#include "tests/tensor_compare.h"

using namespace advcl;
using advcl::testing::max_abs_diff;
using data::testing::TempDir;

namespace {

constexpr int64_t kWidth = 2;

method::ContrastiveModelOptions source_options() {
  method::ContrastiveModelOptions o;
  o.backbone.width = kWidth;
  o.backbone.in_channels = 3;
  o.backbone.num_bn_sets = 3;
  o.backbone.seed = 11;
  o.pseudo_classes = {2, 10};
  return o;
}

// Every BN tensor random (variances positive), so that each set gives
// different features and a wrong set cannot pass.
void randomise_bn(method::ContrastiveModel& model) {
  uint32_t step = 0;
  for (const nn::NamedTensor& t : model.state_dict()) {
    if (t.name.find("bn") == std::string::npos || t.tensor.dtype() != DType::Float32) continue;
    bool var = t.name.find("running_var") != std::string::npos;
    NoGradGuard g;
    Tensor dst = t.tensor;  // shares the model's storage
    dst.copy_(ops::rand_uniform(t.tensor.shape(), {3, 0, step++, 0}, var ? 0.5 : -0.5, var ? 2.0 : 0.5));
  }
}

int run_export(std::vector<std::string> args) {
  args.insert(args.begin(), "export");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return cli::cmd_export(static_cast<int>(argv.size()), argv.data());
}

class Export : public ::testing::Test {
 protected:
  void SetUp() override {
    source = std::make_unique<method::ContrastiveModel>(source_options());
    randomise_bn(*source);
    source->eval();
    nn::CheckpointInfo info;
    info.metadata = cli::model_metadata(source_options());
    nn::save_checkpoint(t / "pre.safetensors", *source, nullptr, info);
    x = ops::rand_uniform({4, 3, 8, 8}, {5, 0, 0, 0}, 0, 1);
  }
  Tensor source_features(int set) {
    NoGradGuard g;
    return source->features(x, set);
  }
  TempDir t;
  std::unique_ptr<method::ContrastiveModel> source;
  Tensor x;
};

TEST_F(Export, DefaultIsPgdAndReloadsWithTheSameFeatures) {
  ASSERT_EQ(run_export({"--ckpt", t / "pre.safetensors", "--out", t / "enc.safetensors"}), 0);
  auto enc = cli::load_encoder(t / "enc.safetensors", -1);
  EXPECT_EQ(enc->options().num_bn_sets, 1);
  NoGradGuard g;
  Tensor f = enc->features(x, 0);
  EXPECT_LE(max_abs_diff(f, source_features(method::kAdvclPgd)), 1e-6);
  EXPECT_GT(max_abs_diff(f, source_features(method::kAdvclNormal)), 1e-3);  // the sets do differ
}

TEST_F(Export, ChosenSetByNameOrIndex) {
  ASSERT_EQ(run_export({"--ckpt", t / "pre.safetensors", "--out", t / "n.safetensors", "--bn-set", "normal"}), 0);
  ASSERT_EQ(run_export({"--ckpt", t / "pre.safetensors", "--out", t / "c.safetensors", "--bn-set", "2"}), 0);
  NoGradGuard g;
  EXPECT_LE(max_abs_diff(cli::load_encoder(t / "n.safetensors", -1)->features(x, 0), source_features(method::kAdvclNormal)),
            1e-6);
  EXPECT_LE(max_abs_diff(cli::load_encoder(t / "c.safetensors", -1)->features(x, 0), source_features(method::kAdvclPgdCe)),
            1e-6);
}

TEST_F(Export, ReferenceFinetuneNamesAndValues) {
  ASSERT_EQ(run_export({"--ckpt", t / "pre.safetensors", "--out", t / "ref.safetensors", "--format",
                        "reference-finetune"}),
            0);
  SafetensorsFile f = load_safetensors(t / "ref.safetensors");
  // The reference finetuning ResNet-18's state dict without its `linear` classifier.
  const std::vector<std::string> bn = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
  std::set<std::string> want = {"conv1.weight"};
  for (const std::string& s : bn) want.insert("bn1." + s);
  for (int layer = 1; layer <= 4; ++layer)
    for (int block = 0; block < 2; ++block) {
      std::string p = "layer" + std::to_string(layer) + "." + std::to_string(block) + ".";
      want.insert(p + "conv1.weight");
      want.insert(p + "conv2.weight");
      for (const std::string& s : bn) want.insert(p + "bn1." + s), want.insert(p + "bn2." + s);
      if (layer > 1 && block == 0) {
        want.insert(p + "shortcut.0.weight");
        for (const std::string& s : bn) want.insert(p + "shortcut.1." + s);
      }
    }
  std::set<std::string> got;
  for (const auto& [name, tensor] : f.tensors) got.insert(name);
  EXPECT_EQ(got, want);
  EXPECT_EQ(f.metadata.at("format"), "advcl.reference-finetune-encoder");
  EXPECT_EQ(f.tensors.at("layer2.0.shortcut.0.weight").shape(), (Shape{2 * kWidth, kWidth, 1, 1}));
  EXPECT_EQ(f.tensors.at("bn1.num_batches_tracked").dtype(), DType::Int64);
  // Values: the source's `pgd` set.
  std::map<std::string, Tensor> src;
  for (const nn::NamedTensor& nt : source->state_dict()) src[nt.name] = nt.tensor;
  EXPECT_EQ(max_abs_diff(f.tensors.at("layer3.0.shortcut.1.running_var"),
                         src.at("layer3.0.downsample.bn.bn_list.1.running_var")),
            0);
  EXPECT_EQ(max_abs_diff(f.tensors.at("layer3.0.shortcut.0.weight"), src.at("layer3.0.downsample.conv.weight")), 0);
  EXPECT_EQ(max_abs_diff(f.tensors.at("bn1.weight"), src.at("bn1.bn_list.1.weight")), 0);
  // Our loader refuses the foreign names rather than misreading them.
  EXPECT_ANY_THROW(cli::load_encoder(t / "ref.safetensors", -1));
}

TEST_F(Export, ClearErrors) {
  EXPECT_ANY_THROW(run_export({"--ckpt", t / "pre.safetensors", "--out", t / "e.safetensors", "--format", "onnx"}));
  EXPECT_ANY_THROW(run_export({"--ckpt", t / "pre.safetensors", "--out", t / "e.safetensors", "--bn-set", "3"}));
  EXPECT_ANY_THROW(run_export({"--ckpt", t / "pre.safetensors", "--out", t / "e.safetensors", "--bn-set", "adv"}));
  ASSERT_EQ(run_export({"--ckpt", t / "pre.safetensors", "--out", t / "one.safetensors"}), 0);
  // A single-set file: its set was chosen when it was written.
  EXPECT_ANY_THROW(run_export({"--ckpt", t / "one.safetensors", "--out", t / "e.safetensors", "--bn-set", "pgd"}));
  ASSERT_EQ(run_export({"--ckpt", t / "one.safetensors", "--out", t / "two.safetensors"}), 0);
}

TEST(ExportNames, MultiSetNameRejected) {
  EXPECT_EQ(cli::reference_finetune_name("layer4.0.downsample.bn.running_mean"), "layer4.0.shortcut.1.running_mean");
  EXPECT_EQ(cli::reference_finetune_name("layer4.0.bn2.weight"), "layer4.0.bn2.weight");
  EXPECT_ANY_THROW(cli::reference_finetune_name("bn1.bn_list.1.weight"));
}

}  // namespace
