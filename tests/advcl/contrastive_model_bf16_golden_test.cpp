// One training step of ResNet-18 with AdvCL's heads (the nn golden's model and
// loss at width 4, 32x32 images, 16 per view) under bf16 autocast against
// PyTorch's torch.autocast("cpu", dtype=torch.bfloat16) from the same weights
// and inputs (tests/golden/make_bf16_golden.py).
//
// The two autocasts run the same ops in bf16, but PyTorch also stores the
// activations in bf16 (ours stay float32), so they agree to bf16's resolution,
// not float32's. How far that is, PyTorch itself shows: its bf16 and float32
// steps differ by 0.3% in the loss and, after one SGD step (lr 0.1), by up to
// 9% of a tensor's scale in the updated weights (the first convolutions, whose
// gradients pass through every batch norm). The tolerances say that ours is a
// bf16 step of the same quality:
//   * loss: within kLossTol relative of PyTorch's autocast loss;
//   * updated weights, per tensor, max |ours - PyTorch's| over max(max |init|, 1):
//     within kGapFactor times PyTorch's own bf16-to-float32 distance for that
//     tensor, or kWeightFloor, whichever is larger.
// This does not tell bf16 from float32 (PyTorch's float32 step is within the
// gap by definition); tests/engine/bf16_test.cpp does, op by op.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "advcl/pretrain/contrastive_model.h"
#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/checkpoint.h"
#include "nn/sgd.h"
#include "tests/advcl/golden_step_loss.h"
#include "tests/golden_util.h"

using namespace advcl;
using namespace advcl::nn;

namespace {

constexpr double kLossTol = 1e-2;
constexpr double kGapFactor = 3.0;
constexpr double kWeightFloor = 1e-2;

using testing_util::GoldenFile;
const GoldenFile& bf16_golden() { return GoldenFile::load("tests/golden/bf16_golden.safetensors"); }

struct StepResult {
  Tensor loss;
  std::map<std::string, Tensor> grads;
};

// The step of make_nn_golden.py (and contrastive_model_golden_test.cpp), in
// float32, with autocast on or off.
StepResult run_step(bool bf16) {
  const GoldenFile& f = bf16_golden();
  method::ContrastiveModelOptions o;
  o.backbone.width = std::stoll(f.metadata("width"));
  method::ContrastiveModel model(o);
  load_state_dict(model, f.with_prefix("init."), {}, "bf16_golden init.*");
  model.train();
  const int64_t kB = std::stoll(f.metadata("batch_per_view"));
  Tensor x = f.tensor("x");
  Tensor loss;
  {
    autocast::AutocastGuard precision(bf16);
    loss = testing_util::golden_step_loss(model, x, kB, f);
  }
  backward(loss);  // outside the guard: each op's backward follows its forward
  StepResult r;
  r.loss = loss.detach();
  for (const NamedTensor& p : model.named_parameters())
    if (p.tensor.grad().defined()) r.grads[p.name] = p.tensor.grad();
  return r;
}

// The weights after one SGD step from `init` with gradient g (the step's
// momentum buffer is g itself): p - lr (g + wd p).
Tensor updated(const Tensor& init, const Tensor& g) {
  const GoldenFile& f = bf16_golden();
  const double lr = std::stod(f.metadata("lr")), wd = std::stod(f.metadata("weight_decay"));
  return ops::sub(init, ops::mul(ops::add(g, ops::mul(init, wd)), lr));
}

// max |a - b| over the tensor's scale: max |init|, at least 1 (batch-norm
// biases start at 0).
double dist(const Tensor& a, const Tensor& b, const Tensor& init) {
  std::vector<double> x = a.to(DType::Float64).to_vector<double>(), y = b.to(DType::Float64).to_vector<double>(),
                      z = init.to(DType::Float64).to_vector<double>();
  double d = 0, s = 1;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i])), s = std::max(s, std::fabs(z[i]));
  return d / s;
}

}  // namespace

TEST(Bf16Golden, ResNetStepMatchesTorchAutocast) {
  const GoldenFile& f = bf16_golden();
  StepResult bf = run_step(true), fp = run_step(false);
  const bool verbose = std::getenv("ADVCL_BF16_TEST_VERBOSE") != nullptr;
  // The loss, relative to itself.
  const double want = f.tensor("bf16.step1.loss").item(), torch32 = f.tensor("fp32.step1.loss").item();
  const double loss_err = std::fabs(bf.loss.item() - want) / std::fabs(want);
  if (verbose)
    std::fprintf(stderr, "loss: ours %.3e, torch fp32 %.3e, ours fp32 %.3e (relative to torch bf16)\n", loss_err,
                 std::fabs(torch32 - want) / std::fabs(want), std::fabs(fp.loss.item() - want) / std::fabs(want));
  EXPECT_LE(loss_err, kLossTol) << "loss " << bf.loss.item() << " vs PyTorch autocast " << want;
  // The updated weights, relative to each tensor's scale.
  double worst = 0, worst_gap = 0;
  for (const auto& [name, g] : bf.grads) {
    ASSERT_TRUE(f.has("bf16.step1.grad." + name)) << name << " has a gradient; PyTorch's has none";
    const Tensor init = f.tensor("init." + name);
    const Tensor ours = updated(init, g), torch_bf16 = updated(init, f.tensor("bf16.step1.grad." + name)),
                 torch_fp32 = updated(init, f.tensor("fp32.step1.grad." + name));
    const double err = dist(ours, torch_bf16, init), gap = dist(torch_fp32, torch_bf16, init);
    if (verbose) std::fprintf(stderr, "%-45s ours %.2e  torch bf16-fp32 gap %.2e\n", name.c_str(), err, gap);
    EXPECT_LE(err, std::max(kGapFactor * gap, kWeightFloor)) << name << ": updated weights vs PyTorch autocast's (its own bf16-fp32 gap " << gap
                               << ")";
    worst = std::max(worst, err), worst_gap = std::max(worst_gap, gap);
  }
  if (verbose) std::fprintf(stderr, "worst: ours %.2e, torch's own gap %.2e\n", worst, worst_gap);
}
