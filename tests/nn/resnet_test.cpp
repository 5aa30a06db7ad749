// ResNet-18: names and shapes equal the reference's state dict, the width and
// input-channel options, reproducible keyed initialisation with the stated
// distributions, output shapes, and one joint per-view call equalling
// separate calls through the whole network.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/resnet.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using namespace advcl::nn;
using nn_test::kBnNormal;
using nn_test::kBnPgd;
using nn_test::kBnPgdCe;

namespace {

// tests/nn/reference_state_dict_keys.txt: "name (d0, d1, ...)" per line, a
// copy of the reference's pretraining state dict (width 64) without
// `module.`, head_pred and head_ce.
std::vector<std::pair<std::string, Shape>> reference_keys() {
  std::string path = testing_util::source_path("tests/nn/reference_state_dict_keys.txt");
  std::ifstream in(path);
  if (!in) fail(testing_util::missing_file_message(path));
  std::vector<std::pair<std::string, Shape>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    size_t sp = line.find(' ');
    std::string name = line.substr(0, sp), dims = line.substr(sp + 1);
    Shape shape;
    for (char& c : dims)
      if (c == '(' || c == ')' || c == ',') c = ' ';
    std::istringstream ds(dims);
    int64_t d;
    while (ds >> d) shape.push_back(d);
    out.emplace_back(name, shape);
  }
  return out;
}

}  // namespace

TEST(Resnet, StateDictEqualsReferenceNamesAndShapes) {
  ResNet18 model;  // width 64, 3 sets, heads: the reference's pretraining model
  StateDict s = model.state_dict();
  auto ref = reference_keys();
  ASSERT_EQ(ref.size(), 339u);
  ASSERT_EQ(s.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(s[i].name, ref[i].first) << "at position " << i;
    EXPECT_EQ(shape_str(s[i].tensor.shape()), shape_str(ref[i].second)) << ref[i].first;
  }
  // 20 convs, 20 BN layers x 3 sets x (weight, bias), 5 fc x 2, head_proj 2 linears x 2 + BN 2.
  EXPECT_EQ(model.named_parameters().size(), 20u + 120u + 10u + 6u);
}

TEST(Resnet, WidthAndInputChannels) {
  ResNetOptions o;
  o.width = 16;
  o.in_channels = 1;
  o.heads = false;
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
  EXPECT_THROW(model.project(f, 1), Error);
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
  // Linear: uniform ±1/sqrt(fan_in) for weight and bias.
  double bound = 1 / std::sqrt(512.0);
  for (const Tensor& t : {a.fc[4]->weight, a.fc[4]->bias, a.head_proj->fc0.weight}) {
    std::vector<float> u = t.to_vector<float>();
    float lo = 1, hi = -1;
    for (float e : u) lo = std::min(lo, e), hi = std::max(hi, e);
    EXPECT_GE(lo, -bound);
    EXPECT_LE(hi, bound);
    EXPECT_LT(lo, -0.9 * bound);
    EXPECT_GT(hi, 0.9 * bound);
  }
  // BN: weight 1, bias 0, running mean 0, var 1.
  EXPECT_EQ(a.bn1.set(2).weight.to_vector<float>(), std::vector<float>(64, 1.0f));
  EXPECT_EQ(a.bn1.set(1).bias.to_vector<float>(), std::vector<float>(64, 0.0f));
  // Keyed by name: a model without heads has the same backbone.
  o.seed = 3;
  o.heads = false;
  ResNet18 d(o);
  EXPECT_TRUE(testing_util::close("layer3.1.conv2", d.blocks[5]->conv2.weight, a.blocks[5]->conv2.weight, {0, 0}));
}

TEST(Resnet, ForwardShapes) {
  ResNetOptions o;
  o.width = 4;
  ResNet18 model(o);
  Tensor x = nn_test::rand_tensor({6, 3, 16, 16}, 2, 0, 1, DType::Float32);
  Tensor f = model.features(x, {kBnNormal, kBnPgd, kBnPgdCe});
  EXPECT_EQ(shape_str(f.shape()), shape_str({6, 32}));
  Tensor p = model.project(f, 3);
  EXPECT_EQ(shape_str(p.shape()), shape_str({6, 128}));
  std::vector<float> pv = p.to_vector<float>();
  for (int i = 0; i < 6; ++i) {
    double n = 0;
    for (int j = 0; j < 128; ++j) n += double(pv[i * 128 + j]) * pv[i * 128 + j];
    EXPECT_NEAR(n, 1, 1e-5);
  }
  auto logits = model.pseudo_logits(f);
  ASSERT_EQ(logits.size(), 5u);
  EXPECT_EQ(shape_str(logits[4].shape()), shape_str({6, 500}));
}

// The whole network: one call with three per-view sets equals three calls.
TEST(Resnet, PerViewCallEqualsSeparateCalls) {
  ResNetOptions o;
  o.width = 4;
  ResNet18 joint(o), separate(o);
  joint.to(DType::Float64);
  separate.to(DType::Float64);
  nn_test::randomize_state(joint, 5, true);
  nn_test::randomize_state(separate, 5, true);
  Tensor x = nn_test::rand_tensor({9, 3, 8, 8}, 3, 0, 1);
  std::vector<int> sets = {kBnPgd, kBnNormal, kBnPgd};
  Tensor fj = joint.features(x, BnSets(sets));
  Tensor pj = joint.project(fj, 3);
  std::vector<Tensor> fs, ps;
  for (int v = 0; v < 3; ++v) {
    fs.push_back(separate.features(x.narrow0(3 * v, 3), sets[v]));
    ps.push_back(separate.project(fs.back(), 1));
  }
  EXPECT_TRUE(testing_util::close("features", fj, ops::cat(fs), {1e-12, 1e-13}));
  EXPECT_TRUE(testing_util::close("projection", pj, ops::cat(ps), {1e-12, 1e-13}));
  backward(ops::sum(ops::mul(pj, nn_test::rand_tensor(pj.shape(), 4))));
  backward(ops::sum(ops::mul(ops::cat(ps), nn_test::rand_tensor(pj.shape(), 4))));
  StateDict a = joint.state_dict(), b = separate.state_dict();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(testing_util::close(a[i].name, a[i].tensor, b[i].tensor, {1e-12, 1e-13}));
    if (a[i].kind != TensorKind::Parameter || !b[i].tensor.grad().defined()) continue;
    if (a[i].name == "head_proj.0.bias") {
      // A bias right before a BN has a zero gradient in exact arithmetic: only rounding noise is left.
      for (double g : a[i].tensor.grad().to_vector<double>()) EXPECT_LT(std::abs(g), 1e-12);
      continue;
    }
    EXPECT_TRUE(testing_util::close(a[i].name + ".grad", a[i].tensor.grad(), b[i].tensor.grad(), {1e-10, 1e-12}));
  }
}
