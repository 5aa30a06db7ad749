#include <gtest/gtest.h>

#include "advcl/attacks/pgd.h"
#include "engine/counters.h"
#include "engine/ops.h"

using namespace advcl;

namespace {
Tensor vec(std::vector<double> v) { return Tensor::from_vector<double>(v, {1, static_cast<int64_t>(v.size())}); }
}  // namespace

TEST(Pgd, LinearLossReachesTheClosedFormOptimum) {
  // loss = <w, x>: the best L-inf perturbation is x + eps * sign(w), clipped to [0, 1].
  Tensor x = vec({0.5, 0.5, 0.01, 0.99, 0.3});
  Tensor w = vec({1.0, -2.0, -0.5, 3.0, 0.0});
  method::PgdOptions opt;
  opt.epsilon = 0.1;
  opt.step = 0.03;
  opt.iterations = 10;
  opt.start = method::PgdOptions::Start::Clean;
  auto loss = [&](const std::vector<Tensor>& a) { return ops::sum(ops::mul(a[0], w)); };
  Tensor adv = method::pgd_linf({x}, loss, opt, {RngKey{}})[0];
  std::vector<double> want{0.6, 0.4, 0.0, 1.0, 0.3};  // sign(0) = 0: no move
  std::vector<double> got = adv.to_vector<double>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << i;
}

TEST(Pgd, StaysInTheBallFromARandomStart) {
  Tensor x = ops::rand_uniform({4, 3, 5, 5}, {3, 0, 0, 0}, 0, 1, DType::Float64);
  Tensor w = ops::rand_uniform({4, 3, 5, 5}, {3, 0, 1, 0}, -1, 1, DType::Float64);
  method::PgdOptions opt;  // eps 8/255, step 2/255, random start
  opt.iterations = 3;
  auto loss = [&](const std::vector<Tensor>& a) { return ops::sum(ops::mul(ops::mul(a[0], a[0]), w)); };
  RngKey key{0, static_cast<uint32_t>(RngPurpose::AttackStart), 0, 0};
  Tensor adv = method::pgd_linf({x}, loss, opt, {key})[0];
  std::vector<double> a = adv.to_vector<double>(), c = x.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LE(std::abs(a[i] - c[i]), opt.epsilon + 1e-12);
    EXPECT_GE(a[i], 0.0);
    EXPECT_LE(a[i], 1.0);
  }
  // The uniform start is not clamped to [0, 1] before the first forward (as the reference).
  Tensor zero = Tensor::zeros({1, 1, 4, 4}, DType::Float64);
  double lowest = 1;
  for (double v : method::pgd_start(zero, opt, key).to_vector<double>()) lowest = std::min(lowest, v);
  EXPECT_LT(lowest, 0.0);
}

TEST(Pgd, ComputesNoWeightGradient) {
  Tensor x = ops::rand_uniform({2, 3, 6, 6}, {4, 0, 0, 0});
  Tensor w = ops::rand_uniform({4, 3, 3, 3}, {4, 0, 1, 0}, -0.3, 0.3).set_requires_grad();
  method::PgdOptions opt;
  opt.iterations = 5;
  auto loss = [&](const std::vector<Tensor>& a) {
    return ops::sum(ops::relu(ops::conv2d(a[0], w, Tensor(), {1, 1})));
  };
  counters::reset();
  method::pgd_linf({x}, loss, opt, {RngKey{}});
  EXPECT_EQ(counters::get("conv2d.backward_weight"), 0);
  EXPECT_EQ(counters::get("conv2d.backward_data"), 5);
  EXPECT_FALSE(w.grad().defined());
}

TEST(Pgd, JointAttackOfTwoInputs) {
  // Two inputs through one loss: each moves along the sign of its own gradient.
  Tensor a = vec({0.5, 0.5}), b = vec({0.5, 0.5});
  method::PgdOptions opt;
  opt.epsilon = 0.2;
  opt.step = 0.05;
  opt.iterations = 2;
  opt.start = method::PgdOptions::Start::Clean;
  auto loss = [&](const std::vector<Tensor>& x) {
    return ops::sub(ops::sum(x[0]), ops::sum(x[1]));  // a up, b down
  };
  auto adv = method::pgd_linf({a, b}, loss, opt, {RngKey{}, RngKey{}});
  for (double v : adv[0].to_vector<double>()) EXPECT_NEAR(v, 0.6, 1e-12);
  for (double v : adv[1].to_vector<double>()) EXPECT_NEAR(v, 0.4, 1e-12);
}
