#include <gtest/gtest.h>

#include <cmath>

#include "advcl/attacks/apgd.h"
#include "engine/ops.h"
#include "tests/advcl/autoattack_linear_model.h"

using namespace advcl;
using namespace advcl::autoattack;
using namespace advcl::autoattack::test_model;

TEST(ApgdSchedule, CheckpointsFor100Iterations) {
  // Periods 22, 19, 16, 13, 10, 7, 6, 6 (each 3 shorter, never below 6):
  // the paper's p_j = 0, .22, .41, .57, .70, .80, .87, .93, .99 times 100.
  EXPECT_EQ(apgd_checkpoints(100), (std::vector<int>{22, 41, 57, 70, 80, 87, 93, 99}));
}

TEST(ApgdSchedule, ShortRunsUseUnitPeriods) {
  // 10 iterations: first period max(floor(2.2), 1) = 2, then 1 (floor(0.3) -> 1, floor(0.6) -> 1).
  EXPECT_EQ(apgd_checkpoints(10), (std::vector<int>{2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(apgd_checkpoints(1), (std::vector<int>{1}));
}

TEST(Dlr, UntargetedHandExample) {
  // Sorted logits 4 > 3 > 2 > 1 > 0.5.
  Tensor z = Tensor::from_vector<double>({1, 4, 2, 0.5, 3, 1, 4, 2, 0.5, 3}, {2, 5});
  std::vector<double> l = dlr_loss(z, {2, 1}).to_vector<double>();
  EXPECT_NEAR(l[0], -(2.0 - 4.0) / (4.0 - 2.0), 1e-12);  // y not on top: the other is the top logit
  EXPECT_NEAR(l[1], -(4.0 - 3.0) / (4.0 - 2.0), 1e-12);  // y on top: the other is the second
}

TEST(Dlr, TargetedHandExample) {
  Tensor z = Tensor::from_vector<double>({1, 4, 2, 0.5, 3}, {1, 5});
  std::vector<double> l = dlr_loss_targeted(z, {2}, {4}).to_vector<double>();
  EXPECT_NEAR(l[0], -(2.0 - 3.0) / (4.0 - 0.5 * (2.0 + 1.0)), 1e-12);
}

TEST(Dlr, GradientsMatchFiniteDifferences) {
  const int64_t B = 3, C = 6;
  Tensor z = ops::rand_uniform({B, C}, RngKey{7, 0, 0, 0}, -3, 3, DType::Float64);
  std::vector<int64_t> y{0, 3, 5}, t{2, 1, 4};
  // y[0] is forced on top so both branches of the untargeted loss are covered.
  std::vector<double> zv = z.to_vector<double>();
  zv[0] = 10;
  z = Tensor::from_vector<double>(zv, {B, C});
  for (int targeted = 0; targeted < 2; ++targeted) {
    auto loss = [&](const Tensor& v) { return targeted ? dlr_loss_targeted(v, y, t) : dlr_loss(v, y); };
    Tensor zg = z.clone().set_requires_grad(true);
    std::vector<double> g = grad(ops::sum(loss(zg)), {zg})[0].to_vector<double>();
    const double h = 1e-6;
    for (size_t i = 0; i < zv.size(); ++i) {
      std::vector<double> p = zv, m = zv;
      p[i] += h;
      m[i] -= h;
      double fp = ops::sum(loss(Tensor::from_vector<double>(p, {B, C}))).item();
      double fm = ops::sum(loss(Tensor::from_vector<double>(m, {B, C}))).item();
      EXPECT_NEAR(g[i], (fp - fm) / (2 * h), 1e-6) << "targeted " << targeted << " element " << i;
    }
  }
}

TEST(AutoAttackUtil, LinfBoxClipEqualsProjectLinf) {
  // The precomputed bounds APGD and Square clip with give exactly the
  // five-op projection, in float32 and float64, with clean points on the
  // box edges and candidates far outside the ball.
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor u = ops::rand_uniform({6, 3, 5, 5}, RngKey{7, 0, 0, 0}, 0, 1, dt);
    Tensor clean = ops::clamp(ops::add(ops::mul(u, 1.2), -0.1), 0.0, 1.0);  // ~8% exactly 0 or 1
    Tensor x = ops::rand_uniform({6, 3, 5, 5}, RngKey{7, 0, 1, 0}, -0.5, 1.5, dt);
    for (double eps : {0.0, 8.0 / 255, 0.3}) {
      std::vector<double> a = LinfBox(clean, eps).clip(x).to(DType::Float64).to_vector<double>();
      std::vector<double> b = project_linf(x, clean, eps).to(DType::Float64).to_vector<double>();
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << dtype_name(dt) << " eps " << eps << " at " << i;
    }
  }
}

TEST(Apgd, StartIsOnTheBallAndInTheBox) {
  Tensor x = ops::rand_uniform({3, 3, 4, 4}, RngKey{1, 0, 0, 0}, 0, 1, DType::Float64);
  const double eps = 0.1;
  Tensor s = apgd_start(x, {5, 6, 7}, eps, 0, RngPurpose::ApgdCeStart, 0);
  std::vector<double> d = linf_distance(s, x);
  std::vector<double> sv = s.to_vector<double>();
  for (double v : sv) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
  for (double v : d) EXPECT_LE(v, eps + 1e-12);
  // A row's start depends on its id, not its position in the batch.
  Tensor s2 = apgd_start(take_rows(x, {1}), {6}, eps, 0, RngPurpose::ApgdCeStart, 0);
  std::vector<double> a = s2.to_vector<double>(), b = take_rows(s, {1}).to_vector<double>();
  EXPECT_EQ(a, b);
}

TEST(Apgd, CeFindsEveryNonRobustPointOfALinearModel) {
  LinearModel m = make_linear_model(11);
  const double eps = 0.1;
  // Cross-entropy rewards raising several wrong classes at once, so a point
  // that only one class can barely overtake may keep its label under the CE
  // optimum (that is what APGD-T is for): the fragile points here have a
  // wide margin (certified margin < -0.6); the robust ones a narrow one.
  LinearData d = make_linear_data(m, eps, 6, 6, 0.05, 12, 0.6);
  ApgdOptions opt;
  opt.epsilon = eps;
  Tensor adv = apgd_ce(m.fn(), d.x, d.y.to_vector<int64_t>(), iota_ids(d.x.size(0)), opt);
  expect_exact(m, d, adv, eps, "apgd-ce");
}

TEST(Apgd, TargetedFindsEveryNonRobustPointOfALinearModel) {
  LinearModel m = make_linear_model(13);
  const double eps = 0.1;
  LinearData d = make_linear_data(m, eps, 5, 5, 0.05, 14);
  ApgdOptions opt;
  opt.epsilon = eps;
  opt.iterations = 30;  // a linear model needs few steps; keeps the test fast
  Tensor adv = apgd_targeted(m.fn(), d.x, d.y.to_vector<int64_t>(), iota_ids(d.x.size(0)), opt);
  expect_exact(m, d, adv, eps, "apgd-t");
}

TEST(Apgd, RunTracksTheBestLossAndHalvesTheStep) {
  // On a linear model the CE loss is maximised at a vertex of the ball: the
  // best loss must not decrease from the start and steps only shrink.
  LinearModel m = make_linear_model(15);
  const double eps = 0.1;
  LinearData d = make_linear_data(m, eps, 4, 0, 0.05, 16);
  ApgdOptions opt;
  opt.epsilon = eps;
  std::vector<int64_t> y = d.y.to_vector<int64_t>();
  Tensor start = apgd_start(d.x, iota_ids(4), eps, 0, RngPurpose::ApgdCeStart, 0);
  std::vector<double> start_loss;
  {
    NoGradGuard g;
    start_loss = to_host(ce_loss(m.fn()(start), y));
  }
  ApgdRun r = apgd_run(m.fn(), d.x, y, {}, ApgdLoss::CE, start, opt);
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_GE(r.loss_best[i], start_loss[i]);
    EXPECT_TRUE(r.robust[i]);  // certified points
    EXPECT_LE(r.step[i], 2 * eps);
    // The step is 2 eps halved a whole number of times.
    double k = std::log2(2 * eps / r.step[i]);
    EXPECT_NEAR(k, std::round(k), 1e-9);
  }
  // x_best holds the best loss.
  NoGradGuard g;
  std::vector<double> lb = to_host(ce_loss(m.fn()(r.x_best), y));
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(lb[i], r.loss_best[i], 1e-9);
}

TEST(Apgd, SameSeedSameResult) {
  LinearModel m = make_linear_model(17);
  LinearData d = make_linear_data(m, 0.1, 3, 3, 0.05, 18);
  ApgdOptions opt;
  opt.epsilon = 0.1;
  opt.iterations = 20;
  opt.seed = 5;
  std::vector<int64_t> y = d.y.to_vector<int64_t>();
  Tensor a = apgd_ce(m.fn(), d.x, y, iota_ids(6), opt), b = apgd_ce(m.fn(), d.x, y, iota_ids(6), opt);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}

TEST(Apgd, RejectsBadInput) {
  LinearModel m = make_linear_model(19);
  Tensor x = Tensor::zeros({2, 3, 4, 4}, DType::Float64);
  ApgdOptions opt;
  EXPECT_THROW(apgd_ce(m.fn(), x, {0}, {0, 1}, opt), Error);  // label count
  opt.iterations = 0;
  EXPECT_THROW(apgd_ce(m.fn(), x, {0, 1}, {0, 1}, opt), Error);
}
