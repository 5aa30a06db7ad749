// Two SGD steps of the AdvCL ResNet-18 (the backbone and its heads,
// advcl/pretrain/contrastive_model.h) against PyTorch
// (tests/golden/nn_golden.safetensors, made by tests/golden/make_nn_golden.py:
// width 3, two views of 4 images 3x16x16, view A with BN set `normal`, view B
// with `pgd`, each a separate forward call in PyTorch, one joint per-view call
// here). Compared by name: loss, every gradient of step 1, every state-dict
// tensor after two steps (weights, running statistics, num_batches_tracked),
// the momentum buffers, and eval-mode features and projections.
//
// Tolerances (|ours - torch| <= atol * max|torch| + rtol * |torch|):
//   float64 model: rtol 1e-6, atol 1e-6 — both sides compute in float64 from
//     the same float32-representable start; the file stores float32, so the
//     references carry float32 rounding (~6e-8 relative) and cancellation in
//     gradient sums leaves small elements with a larger relative error;
//   float32 model (what training uses): rtol 5e-3, atol 5e-3 — the problem is
//     ill-conditioned (head BN1d over 4 rows, layer4 BN over 16 values):
//     PyTorch's own float32 run differs from its float64 run by up to 2e-3 x
//     max|tensor| on these tensors;
//   a reference that is zero up to rounding (head_proj.0.bias's gradient: a
//     bias followed by BN has an exactly zero gradient) is compared absolutely:
//     |ours| <= 1e-12 (float64) / 1e-6 (float32);
//   integer tensors (num_batches_tracked): exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "advcl/pretrain/contrastive_model.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/checkpoint.h"
#include "nn/sgd.h"
#include "tests/advcl/golden_step_loss.h"
#include "tests/golden_util.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using namespace advcl::nn;
using method::ContrastiveModel;
using method::ContrastiveModelOptions;
using nn_test::kBnNormal;
using nn_test::kBnPgd;
using testing_util::Tolerance;

namespace {

const std::string kFile = "tests/golden/nn_golden.safetensors";
const int64_t kB = 4;

const testing_util::GoldenFile& golden() { return testing_util::GoldenFile::load(kFile); }
Tensor G(const std::string& name) { return golden().tensor(name); }

ContrastiveModelOptions golden_options() {
  ContrastiveModelOptions o;
  o.backbone.width = std::stoll(golden().metadata("width"));
  return o;
}

// testing_util::close, except that a reference that is zero up to rounding
// (max|want| < 1e-12) only requires max|got| <= zero_floor.
::testing::AssertionResult close_or_zero(const std::string& name, const Tensor& got, const Tensor& want, Tolerance tol,
                                         double zero_floor) {
  double want_max = 0, got_max = 0;
  for (double v : want.to(DType::Float64).to_vector<double>()) want_max = std::max(want_max, std::abs(v));
  if (want_max >= 1e-12) return testing_util::close(name, got, want, tol);
  for (double v : got.to(DType::Float64).to_vector<double>()) got_max = std::max(got_max, std::abs(v));
  if (got_max <= zero_floor) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << name << ": the reference is zero up to rounding (max " << want_max
                                       << ") but ours reaches " << got_max << " (allowed " << zero_floor << ")";
}

void run_golden(DType dtype, Tolerance tol, double zero_floor) {
  ContrastiveModel model(golden_options());
  model.to(dtype);
  load_state_dict(model, golden().with_prefix("init."), {}, kFile + " init.*");
  SgdOptions so;
  so.lr = std::stod(golden().metadata("lr"));
  so.momentum = std::stod(golden().metadata("momentum"));
  so.weight_decay = std::stod(golden().metadata("weight_decay"));
  Sgd sgd(model.named_parameters(), so);
  model.train();
  Tensor x = G("x");
  for (int step = 1; step <= 2; ++step) {
    sgd.zero_grad();
    Tensor loss = testing_util::golden_step_loss(model, x.to(dtype), kB, golden());
    std::string s = "step" + std::to_string(step);
    EXPECT_TRUE(testing_util::close(s + ".loss", loss, G(s + ".loss"), tol));
    backward(loss);
    if (step == 1) {
      std::map<std::string, Tensor> grads = golden().with_prefix("step1.grad.");
      for (const NamedTensor& p : model.named_parameters()) {
        auto it = grads.find(p.name);
        if (it == grads.end()) {
          // PyTorch gave it no gradient (set pgd_ce): neither must we.
          EXPECT_FALSE(p.tensor.grad().defined()) << p.name << " has a gradient; PyTorch's has none";
          continue;
        }
        EXPECT_TRUE(close_or_zero("grad " + p.name, p.tensor.grad(), it->second, tol, zero_floor));
      }
    }
    sgd.step();
  }
  std::map<std::string, Tensor> final_state = golden().with_prefix("final.");
  std::map<std::string, Tensor> momentum = golden().with_prefix("final.momentum.");
  for (const NamedTensor& t : model.state_dict()) {
    bool integer = !is_floating(t.tensor.dtype());
    EXPECT_TRUE(testing_util::close("final " + t.name, t.tensor, final_state.at(t.name), integer ? Tolerance{0, 0} : tol));
  }
  ASSERT_EQ(sgd.momentum_buffers().size(), momentum.size());
  for (const auto& [name, buf] : sgd.momentum_buffers())
    EXPECT_TRUE(testing_util::close("momentum " + name, buf, momentum.at(name), tol));

  model.eval();
  NoGradGuard no_grad;
  Tensor feat = model.features(x.to(dtype), {kBnNormal, kBnPgd});
  EXPECT_TRUE(testing_util::close("eval.features", feat, G("eval.features"), tol));
  EXPECT_TRUE(testing_util::close("eval.proj", model.project(feat, 1), G("eval.proj"), tol));
}

}  // namespace

TEST(NnGolden, TwoTrainingStepsFloat64) { run_golden(DType::Float64, {1e-6, 1e-6}, 1e-12); }
TEST(NnGolden, TwoTrainingStepsFloat32) { run_golden(DType::Float32, {5e-3, 5e-3}, 1e-6); }
