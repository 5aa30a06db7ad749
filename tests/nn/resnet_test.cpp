// ResNet-18 backbone: names and shapes equal the reference's encoder, the
// width and input-channel options, reproducible keyed initialisation with the
// stated distributions, output shapes. (The pretraining model with its heads:
// tests/advcl/contrastive_model_test.cpp.)
#include <gtest/gtest.h>

#include <cmath>

#include "nn/resnet.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using namespace advcl::nn;
using nn_test::kBnNormal;
using nn_test::kBnPgd;
using nn_test::kBnPgdCe;

TEST(Resnet, StateDictEqualsReferenceEncoderNamesAndShapes) {
  ResNet18 model;  // width 64, 3 sets: the reference's pretraining encoder
  StateDict s = model.state_dict();
  // The reference's names of the stem and the four stages, in its order (its heads follow them).
  std::vector<std::pair<std::string, Shape>> ref;
  for (const auto& [name, shape] : nn_test::reference_keys())
    for (const std::string& prefix : ResNet18::encoder_prefixes())
      if (name.rfind(prefix, 0) == 0) ref.emplace_back(name, shape);
  ASSERT_EQ(ref.size(), 320u);
  ASSERT_EQ(s.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(s[i].name, ref[i].first) << "at position " << i;
    EXPECT_EQ(shape_str(s[i].tensor.shape()), shape_str(ref[i].second)) << ref[i].first;
  }
  // 20 convs, 20 BN layers x 3 sets x (weight, bias).
  EXPECT_EQ(model.named_parameters().size(), 20u + 120u);
}

TEST(Resnet, WidthAndInputChannels) {
  ResNetOptions o;
  o.width = 16;
  o.in_channels = 1;
  o.num_bn_sets = 1;
  ResNet18 model(o);
  StateDict s = model.state_dict();
  EXPECT_EQ(s[0].name, "conv1.weight");
  EXPECT_EQ(shape_str(s[0].tensor.shape()), shape_str({16, 1, 3, 3}));
  EXPECT_EQ(s[1].name, "bn1.weight");  // single set: plain BatchNorm names
  bool has_down = false;
  for (auto& t : s) {
    if (t.name == "layer4.0.downsample.conv.weight") {
      has_down = true;
      EXPECT_EQ(shape_str(t.tensor.shape()), shape_str({128, 64, 1, 1}));
    }
    EXPECT_EQ(t.name.find("head"), std::string::npos);
    EXPECT_EQ(t.name.find("fc_"), std::string::npos);
  }
  EXPECT_TRUE(has_down);
  EXPECT_EQ(model.feature_dim(), 128);
  Tensor f = model.features(nn_test::rand_tensor({2, 1, 8, 8}, 1, 0, 1, DType::Float32), kBnNormal);
  EXPECT_EQ(shape_str(f.shape()), shape_str({2, 128}));
  EXPECT_THROW(model.features(nn_test::rand_tensor({2, 3, 8, 8}, 1, 0, 1, DType::Float32), 0), Error);
}

TEST(Resnet, InitReproducibleAndDistributed) {
  ResNetOptions o;
  o.seed = 3;
  ResNet18 a(o), b(o);
  EXPECT_TRUE(nn_test::same_state(a, b));
  o.seed = 4;
  ResNet18 c(o);
  EXPECT_FALSE(testing_util::close("w", a.conv1.weight, c.conv1.weight, {0, 0}));
  // Kaiming normal, fan_out, ReLU gain: std sqrt(2 / (out * k * k)).
  Tensor w = a.blocks[6]->conv1.weight;  // layer4.0.conv1: 512 x 256 x 3 x 3
  std::vector<float> v = w.to_vector<float>();
  double sum = 0, sq = 0;
  for (float e : v) sum += e, sq += double(e) * e;
  double mean = sum / v.size(), sd = std::sqrt(sq / v.size() - mean * mean), want = std::sqrt(2.0 / (512 * 9));
  EXPECT_NEAR(mean, 0, 4 * want / std::sqrt(double(v.size())));
  EXPECT_NEAR(sd / want, 1, 0.01);
  // BN: weight 1, bias 0, running mean 0, var 1.
  EXPECT_EQ(a.bn1.set(2).weight.to_vector<float>(), std::vector<float>(64, 1.0f));
  EXPECT_EQ(a.bn1.set(1).bias.to_vector<float>(), std::vector<float>(64, 0.0f));
}

TEST(Resnet, ForwardShapes) {
  ResNetOptions o;
  o.width = 4;
  ResNet18 model(o);
  Tensor x = nn_test::rand_tensor({6, 3, 16, 16}, 2, 0, 1, DType::Float32);
  Tensor f = model.features(x, {kBnNormal, kBnPgd, kBnPgdCe});
  EXPECT_EQ(shape_str(f.shape()), shape_str({6, 32}));
}
