// Checkpoints: round trip, exact resume, strict name/shape checks with
// messages naming the tensors, and encoder-only loading with the `pgd` set
// mapped onto a single-set model. (The pretraining model's saved names against
// the reference's: tests/advcl/contrastive_model_test.cpp.)
#include <gtest/gtest.h>

#include <cstdio>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/resnet.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using namespace advcl::nn;
using nn_test::kBnNormal;
using nn_test::kBnPgd;
using nn_test::kBnPgdCe;

namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "advcl_nn_" + name + ".safetensors";
}

ResNetOptions small(uint64_t seed) {
  ResNetOptions o;
  o.width = 4;
  o.seed = seed;
  return o;
}

// One training step on fixed data (different per `step`).
void train_step(ResNet18& m, Sgd& sgd, uint32_t step) {
  m.train();
  sgd.zero_grad();
  Tensor x = nn_test::rand_tensor({4, 3, 8, 8}, 100 + step, 0, 1, DType::Float32);
  Tensor f = m.features(x, {kBnPgd, kBnNormal});  // [4, 32]
  Tensor loss = ops::add(ops::neg(ops::mean(ops::sum(ops::mul(ops::slice(f, 0, 2), ops::slice(f, 2, 4)), 1))),
                         ops::cross_entropy(f, Tensor::from_vector<int64_t>({1, 2, 3, 4}, {4})));
  backward(loss);
  sgd.step();
}

std::string load_error(const std::string& path, Module& m, const LoadOptions& o = {}) {
  try {
    load_checkpoint(path, m, nullptr, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Writes the model's state with `edit` applied to the name -> tensor map.
template <class Edit>
std::string save_edited(const ResNet18& m, const std::string& name, Edit edit) {
  std::map<std::string, Tensor> t;
  for (const NamedTensor& n : m.state_dict()) t[n.name] = n.tensor;
  edit(t);
  std::string path = temp_path(name);
  save_safetensors(path, {t.begin(), t.end()});
  return path;
}

}  // namespace

TEST(Checkpoint, RoundTripAndExactResume) {
  ResNet18 a(small(1));
  Sgd sa(a.named_parameters(), {0.1, 0.9, 1e-4});
  train_step(a, sa, 0);
  train_step(a, sa, 1);
  CheckpointInfo info;
  info.epoch = 3;
  info.step = 17;
  info.metadata["model_options"] = a.options().to_json();
  info.metadata["rng"] = "{\"seed\":0,\"step\":17}";
  std::string path = temp_path("roundtrip");
  save_checkpoint(path, a, &sa, info);

  ResNet18 b(small(2));  // different initial weights
  Sgd sb(b.named_parameters(), {0.1, 0.9, 1e-4});
  CheckpointInfo back = load_checkpoint(path, b, &sb);
  EXPECT_EQ(back.epoch, 3);
  EXPECT_EQ(back.step, 17);
  EXPECT_EQ(back.metadata.at("model_options"), a.options().to_json());
  EXPECT_EQ(back.metadata.at("format"), "advcl.checkpoint");
  EXPECT_TRUE(nn_test::same_state(a, b));
  ASSERT_EQ(sa.momentum_buffers().size(), sb.momentum_buffers().size());
  for (const auto& [name, buf] : sa.momentum_buffers())
    EXPECT_TRUE(testing_util::close(name, sb.momentum_buffers().at(name), buf, {0, 0}));

  // Resume: both continue with the same steps and stay bit-identical.
  for (uint32_t s = 2; s < 4; ++s) {
    train_step(a, sa, s);
    train_step(b, sb, s);
  }
  EXPECT_TRUE(nn_test::same_state(a, b));
  std::remove(path.c_str());
}

TEST(Checkpoint, MissingTensorIsNamed) {
  ResNet18 m(small(1));
  std::string path = save_edited(m, "missing", [](auto& t) { t.erase("layer3.1.bn2.bn_list.2.running_var"); });
  ResNet18 target(small(2));
  std::string err = load_error(path, target);
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
  EXPECT_NE(err.find("layer3.1.bn2.bn_list.2.running_var"), std::string::npos) << err;
  EXPECT_NE(err.find(path), std::string::npos) << err;
  // Nothing was loaded: a failed load leaves the model as it was.
  ResNet18 fresh(small(2));
  EXPECT_TRUE(nn_test::same_state(target, fresh));
  std::remove(path.c_str());
}

TEST(Checkpoint, UnexpectedTensorIsNamed) {
  ResNet18 m(small(1));
  std::string path = save_edited(m, "extra", [](auto& t) { t["head_pred.0.weight"] = Tensor::zeros({128, 128}); });
  ResNet18 target(small(2));
  std::string err = load_error(path, target);
  EXPECT_NE(err.find("unexpected"), std::string::npos) << err;
  EXPECT_NE(err.find("head_pred.0.weight"), std::string::npos) << err;
  std::remove(path.c_str());
}

TEST(Checkpoint, MisshapedTensorIsNamed) {
  ResNet18 m(small(1));
  std::string path =
      save_edited(m, "shape", [](auto& t) { t["layer2.0.downsample.conv.weight"] = Tensor::zeros({10, 31}); });
  ResNet18 target(small(2));
  std::string err = load_error(path, target);
  EXPECT_NE(err.find("layer2.0.downsample.conv.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("[10, 31]"), std::string::npos) << err;
  std::remove(path.c_str());
}

TEST(Checkpoint, WrongWidthFailsLoudly) {
  ResNet18 m(small(1));
  std::string path = temp_path("width");
  save_checkpoint(path, m, nullptr, {});
  ResNetOptions o = small(1);
  o.width = 8;
  ResNet18 wider(o);
  EXPECT_NE(load_error(path, wider).find("mismatched tensors"), std::string::npos);
  std::remove(path.c_str());
}

// The reference's finetuning load: encoder only, BN set `pgd` (1) onto plain
// BNs; the file's other tensors (a pretraining file's heads) are skipped.
TEST(Checkpoint, EncoderFromPretrainingMapsPgdSet) {
  ResNet18 pre(small(1));
  nn_test::randomize_state(pre, 9, true);
  std::string path = save_edited(pre, "encoder", [](auto& t) {
    t["fc_010.weight"] = Tensor::zeros({10, 32});
    t["head_proj.1.running_var"] = Tensor::ones({32});
  });
  ResNetOptions fo = small(2);
  fo.num_bn_sets = 1;
  ResNet18 fine(fo);
  // A plain load must refuse: the names differ.
  EXPECT_NE(load_error(path, fine).find("bn1.weight"), std::string::npos);
  load_checkpoint(path, fine, nullptr, LoadOptions::encoder_from_pretraining());
  EXPECT_TRUE(testing_util::close("conv1", fine.conv1.weight, pre.conv1.weight, {0, 0}));
  EXPECT_TRUE(testing_util::close("bn1 weight", fine.bn1.set(0).weight, pre.bn1.set(kBnPgd).weight, {0, 0}));
  EXPECT_TRUE(testing_util::close("downsample running_var", fine.blocks[2]->downsample->bn.set(0).running_var,
                                  pre.blocks[2]->downsample->bn.set(kBnPgd).running_var, {0, 0}));
  EXPECT_FALSE(testing_util::close("not the normal set", fine.bn1.set(0).weight, pre.bn1.set(kBnNormal).weight, {0, 0}));
  std::remove(path.c_str());
}

TEST(Checkpoint, ForeignFormatRejected) {
  ResNet18 m(small(1));
  std::vector<std::pair<std::string, Tensor>> t;
  for (const NamedTensor& n : m.state_dict()) t.emplace_back(n.name, n.tensor);
  std::string path = temp_path("format");
  save_safetensors(path, t, {{"format", "something.else"}});
  EXPECT_NE(load_error(path, m).find("something.else"), std::string::npos);
  std::remove(path.c_str());
}
