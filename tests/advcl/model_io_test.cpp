// Model metadata in checkpoints (advcl/run/model_io.h): the entries are the
// ones earlier checkpoints carry, recorded from the code that wrote them when
// nn::ResNet18 still built the heads (commit 4772e50); and checkpoints with
// those entries load: a pretraining file through load_encoder and back into
// its ContrastiveModel, a finetuned one through load_finetuned.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>

#include "advcl/finetune/finetune_model.h"
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/run/model_io.h"
#include "nn/checkpoint.h"
#include "tests/datasets/dataset_test_util.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using data::testing::TempDir;
using Metadata = std::map<std::string, std::string>;

namespace {

// The entries the earlier code wrote for a width-8, 3-channel model.
Metadata earlier(const std::string& bn_sets, const std::string& heads, const std::string& pseudo_classes) {
  return {{"model.width", "8"},   {"model.in_channels", "3"}, {"model.bn_sets", bn_sets},
          {"model.heads", heads}, {"model.proj_dim", "128"},  {"model.pseudo_classes", pseudo_classes}};
}
// A pretraining model (3 BN sets, the five classifiers), SimCLR's (one set, no
// classifier), and a bare one-set encoder (a finetuned model's).
const Metadata kPretrain = earlier("3", "1", "2,10,50,100,500");
const Metadata kSimclr = earlier("1", "1", "");
const Metadata kEncoder = earlier("1", "0", "");

}  // namespace

TEST(ModelMetadata, EntriesAreThoseOfEarlierCheckpoints) {
  method::ContrastiveModelOptions o;
  o.backbone.width = 8;
  EXPECT_EQ(cli::model_metadata(o), kPretrain);
  o.backbone.num_bn_sets = 1;
  o.pseudo_classes.clear();
  EXPECT_EQ(cli::model_metadata(o), kSimclr);
  EXPECT_EQ(cli::encoder_metadata(o.backbone), kEncoder);
}

TEST(ModelMetadata, CheckpointsWithTheEarlierEntriesLoad) {
  TempDir t;
  method::ContrastiveModelOptions o;
  o.backbone.width = 8;
  o.backbone.seed = 7;
  method::ContrastiveModel pre(o);
  nn_test::randomize_state(pre, 9, true);  // distinct BN sets
  nn::CheckpointInfo info;
  info.metadata = kPretrain;
  nn::save_checkpoint(t / "pre.safetensors", pre, nullptr, info);

  // The backbone the metadata describes, and the encoder with set `pgd`.
  nn::ResNetOptions b = cli::model_options_from(t / "pre.safetensors");
  EXPECT_EQ(b.width, 8);
  EXPECT_EQ(b.in_channels, 3);
  EXPECT_EQ(b.num_bn_sets, 3);
  std::unique_ptr<nn::ResNet18> enc = cli::load_encoder(t / "pre.safetensors", -1);
  EXPECT_TRUE(testing_util::close("conv1", enc->conv1.weight, pre.backbone.conv1.weight, {0, 0}));
  EXPECT_TRUE(testing_util::close("bn1", enc->bn1.set(0).weight, pre.backbone.bn1.set(1).weight, {0, 0}));
  // The whole model back, strictly (every name and shape), as a resumed run loads it.
  method::ContrastiveModelOptions other = o;
  other.backbone.seed = 8;
  method::ContrastiveModel back(other);
  nn::load_checkpoint(t / "pre.safetensors", back);
  EXPECT_TRUE(nn_test::same_state(back, pre));

  // A finetuned model's checkpoint.
  method::FinetuneModel fine(std::move(enc), 10, 4);
  nn::CheckpointInfo fi;
  fi.metadata = kEncoder;
  fi.metadata["finetune.classes"] = "10";
  EXPECT_EQ(method::finetune_metadata(fine), fi.metadata);
  nn::save_checkpoint(t / "fine.safetensors", fine, nullptr, fi);
  std::unique_ptr<method::FinetuneModel> fine_back = method::load_finetuned(t / "fine.safetensors");
  EXPECT_TRUE(nn_test::same_state(*fine_back, fine));
}

TEST(ModelMetadata, BnSetNamesEntryIsWhatTheReaderSplits) {
  EXPECT_EQ(cli::bn_set_names_entry({"normal", "pgd", "pgd_ce"}), "normal,pgd,pgd_ce");
  EXPECT_THROW(cli::bn_set_names_entry({"normal", "a,b"}), Error);
  EXPECT_THROW(cli::bn_set_names_entry({""}), Error);
}
