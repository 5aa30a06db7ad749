// The pretraining model, the plain backbone with AdvCL's heads
// (advcl/pretrain/contrastive_model.h): the reference's 339 names and shapes
// in its order, in memory and in a saved checkpoint; a seed's initial weights
// against values recorded when nn/ still built the heads; the backbone equal
// to a bare nn::ResNet18 of the same seed; the heads' initial distributions
// and batch norm; output shapes; one joint per-view call equal to separate
// calls; train/eval reaching the heads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "advcl/pretrain/contrastive_model.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using method::ContrastiveModel;
using method::ContrastiveModelOptions;
using nn_test::kBnNormal;
using nn_test::kBnPgd;
using nn_test::kBnPgdCe;

namespace {

// FNV-1a (64 bits) of a host tensor's bytes.
uint64_t fnv1a64(const Tensor& t) {
  const unsigned char* p = static_cast<const unsigned char*>(t.raw_data());
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < t.nbytes(); ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

struct RecordedTensor {
  std::string name, shape, dtype;
  uint64_t hash = 0;
};

// tests/advcl/contrastive_model_init_seed7_width8.txt: "name | shape | dtype |
// hash" per line; its header says where the values come from.
std::vector<RecordedTensor> recorded_init() {
  std::string path = testing_util::source_path("tests/advcl/contrastive_model_init_seed7_width8.txt");
  std::ifstream in(path);
  if (!in) fail(testing_util::missing_file_message(path));
  std::vector<RecordedTensor> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    for (size_t at = 0;;) {
      size_t bar = line.find(" | ", at);
      f.push_back(line.substr(at, bar == std::string::npos ? std::string::npos : bar - at));
      if (bar == std::string::npos) break;
      at = bar + 3;
    }
    if (f.size() != 4) fail(path, ": expected 'name | shape | dtype | hash', got '", line, "'");
    out.push_back({f[0], f[1], f[2], std::stoull(f[3], nullptr, 16)});
  }
  return out;
}

}  // namespace

TEST(ContrastiveModel, StateDictEqualsReferenceNamesAndShapes) {
  ContrastiveModel model;  // width 64, 3 sets, five classifiers: the reference's pretraining model
  nn::StateDict s = model.state_dict();
  auto ref = nn_test::reference_keys();
  ASSERT_EQ(ref.size(), 339u);
  ASSERT_EQ(s.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(s[i].name, ref[i].first) << "at position " << i;
    EXPECT_EQ(shape_str(s[i].tensor.shape()), shape_str(ref[i].second)) << ref[i].first;
  }
  // 20 convs, 20 BN layers x 3 sets x (weight, bias), 5 fc x 2, head_proj 2 linears x 2 + BN 2.
  EXPECT_EQ(model.named_parameters().size(), 20u + 120u + 10u + 6u);
}

TEST(ContrastiveModel, SavedNamesEqualReference) {
  ContrastiveModel model;  // the paper's model
  std::string path = ::testing::TempDir() + "advcl_contrastive_model_names.safetensors";
  nn::save_checkpoint(path, model, nullptr, {});
  SafetensorsFile f = load_safetensors(path);
  std::set<std::string> saved, ref;
  for (auto& [name, t] : f.tensors) saved.insert(name);
  for (const auto& [name, shape] : nn_test::reference_keys()) ref.insert(name);
  EXPECT_EQ(saved, ref);
  EXPECT_EQ(f.tensors.at("conv1.weight").dtype(), DType::Float32);
  EXPECT_EQ(f.tensors.at("bn1.bn_list.0.num_batches_tracked").dtype(), DType::Int64);
  std::remove(path.c_str());
}

// Seed 7, width 8, the rest the defaults: every tensor's name, shape, dtype
// and bytes as recorded from the model nn::ResNet18 built with its heads.
TEST(ContrastiveModel, SeedGivesTheRecordedInitialWeights) {
  ContrastiveModelOptions o;
  o.backbone.width = 8;
  o.backbone.seed = 7;
  ContrastiveModel model(o);
  std::vector<RecordedTensor> want = recorded_init();
  nn::StateDict s = model.state_dict();
  ASSERT_EQ(want.size(), 339u);
  ASSERT_EQ(s.size(), want.size());
  for (size_t i = 0; i < s.size(); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(s[i].name, want[i].name) << "at position " << i;
    EXPECT_EQ(shape_str(s[i].tensor.shape()), want[i].shape);
    EXPECT_EQ(dtype_name(s[i].tensor.dtype()), want[i].dtype);
    EXPECT_EQ(fnv1a64(s[i].tensor), want[i].hash) << "the values differ";
  }
}

// Initialisation is keyed by name: the backbone is what nn::ResNet18 alone
// draws, and a head's weights do not depend on which other heads there are.
TEST(ContrastiveModel, BackboneIsTheBareResNetOfTheSameSeed) {
  ContrastiveModelOptions o;
  o.backbone.width = 4;
  o.backbone.seed = 3;
  ContrastiveModel a(o);
  nn::ResNet18 bare(o.backbone);
  EXPECT_TRUE(nn_test::same_state(a.backbone, bare));
  o.pseudo_classes = {10};
  ContrastiveModel b(o);
  EXPECT_TRUE(nn_test::same_state(*a.fc[1], *b.fc[0]));  // fc_010
  EXPECT_TRUE(nn_test::same_state(a.head_proj, b.head_proj));
  o.backbone.seed = 4;
  ContrastiveModel c(o);
  EXPECT_FALSE(testing_util::close("fc_010", b.fc[0]->weight, c.fc[0]->weight, {0, 0}));
  EXPECT_FALSE(testing_util::close("head_proj.3", b.head_proj.fc3.weight, c.head_proj.fc3.weight, {0, 0}));
}

TEST(ContrastiveModel, HeadInitDistributions) {
  ContrastiveModelOptions o;
  o.backbone.width = 8;  // feature 64
  o.backbone.seed = 3;
  ContrastiveModel a(o);
  // Linear: uniform ±1/sqrt(fan_in) for weight and bias.
  double bound = 1 / std::sqrt(64.0);
  for (const Tensor& t : {a.fc[4]->weight, a.fc[4]->bias, a.head_proj.fc0.weight}) {
    std::vector<float> u = t.to_vector<float>();
    float lo = 1, hi = -1;
    for (float e : u) lo = std::min(lo, e), hi = std::max(hi, e);
    EXPECT_GE(lo, -bound);
    EXPECT_LE(hi, bound);
    EXPECT_LT(lo, -0.9 * bound);
    EXPECT_GT(hi, 0.9 * bound);
  }
  // The head's BN1d: weight 1, bias 0.
  EXPECT_EQ(a.head_proj.bn1.set(0).weight.to_vector<float>(), std::vector<float>(64, 1.0f));
  EXPECT_EQ(a.head_proj.bn1.set(0).bias.to_vector<float>(), std::vector<float>(64, 0.0f));
}

// One statistic set, the backbone's ghost groups (and sync hook).
TEST(ContrastiveModel, HeadBatchNormFollowsTheBackbone) {
  ContrastiveModelOptions o;
  o.backbone.width = 2;
  o.backbone.num_bn_sets = 2;
  o.backbone.bn_group_size = 3;
  ContrastiveModel m(o);
  EXPECT_EQ(m.head_proj.bn1.num_sets(), 1);
  EXPECT_EQ(m.head_proj.bn1.options().group_size, 3);
  EXPECT_EQ(m.backbone.bn1.num_sets(), 2);
}

TEST(ContrastiveModel, ForwardShapes) {
  ContrastiveModelOptions o;
  o.backbone.width = 4;
  ContrastiveModel model(o);
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
  // Without pseudo-label classes (SimCLR, ACL): head_proj alone.
  o.pseudo_classes.clear();
  ContrastiveModel plain(o);
  EXPECT_TRUE(plain.pseudo_logits(f).empty());
  for (const nn::NamedTensor& t : plain.state_dict()) EXPECT_EQ(t.name.find("fc_"), std::string::npos) << t.name;
  ContrastiveModelOptions bad = o;
  bad.pseudo_classes = {2, 0};
  EXPECT_THROW({ ContrastiveModel m(bad); }, Error);
}

// The whole network: one call with three per-view sets equals three calls.
TEST(ContrastiveModel, PerViewCallEqualsSeparateCalls) {
  ContrastiveModelOptions o;
  o.backbone.width = 4;
  ContrastiveModel joint(o), separate(o);
  joint.to(DType::Float64);
  separate.to(DType::Float64);
  nn_test::randomize_state(joint, 5, true);
  nn_test::randomize_state(separate, 5, true);
  Tensor x = nn_test::rand_tensor({9, 3, 8, 8}, 3, 0, 1);
  std::vector<int> sets = {kBnPgd, kBnNormal, kBnPgd};
  Tensor fj = joint.features(x, nn::BnSets(sets));
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
  nn::StateDict a = joint.state_dict(), b = separate.state_dict();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(testing_util::close(a[i].name, a[i].tensor, b[i].tensor, {1e-12, 1e-13}));
    if (a[i].kind != nn::TensorKind::Parameter || !b[i].tensor.grad().defined()) continue;
    if (a[i].name == "head_proj.0.bias") {
      // A bias right before a BN has a zero gradient in exact arithmetic: only rounding noise is left.
      for (double g : a[i].tensor.grad().to_vector<double>()) EXPECT_LT(std::abs(g), 1e-12);
      continue;
    }
    EXPECT_TRUE(testing_util::close(a[i].name + ".grad", a[i].tensor.grad(), b[i].tensor.grad(), {1e-10, 1e-12}));
  }
}

TEST(ContrastiveModel, TrainAndEvalReachTheHeads) {
  ContrastiveModelOptions o;
  o.backbone.width = 2;
  o.backbone.num_bn_sets = 2;
  ContrastiveModel m(o);
  EXPECT_EQ(m.state_dict().back().name, "head_proj.3.bias");
  m.eval();
  EXPECT_FALSE(m.backbone.blocks[3]->bn2.is_training());
  EXPECT_FALSE(m.head_proj.bn1.is_training());
  m.train();
  EXPECT_TRUE(m.head_proj.bn1.set(0).is_training());
  for (const nn::NamedTensor& p : m.named_parameters()) EXPECT_TRUE(p.tensor.requires_grad()) << p.name;
}
