#include <gtest/gtest.h>

#include <cmath>

#include "advcl/attacks/fab.h"
#include "engine/ops.h"
#include "tests/advcl/autoattack_linear_model.h"

using namespace advcl;
using namespace advcl::autoattack;
using namespace advcl::autoattack::test_model;

namespace {
std::vector<double> project(std::vector<double> t, std::vector<double> w, double b, double* norm = nullptr) {
  std::vector<double> d(t.size());
  double n = fab_project_linf(t.data(), w.data(), b, static_cast<int64_t>(t.size()), d.data());
  if (norm) *norm = n;
  return d;
}
}  // namespace

TEST(FabProjection, InteriorSolutionMovesEveryCoordinateEqually) {
  // w . t = 1 > b = 0.6: lower both by delta, 2 delta = 0.4.
  double n;
  std::vector<double> d = project({0.5, 0.5}, {1, 1}, 0.6, &n);
  EXPECT_NEAR(d[0], -0.2, 1e-15);
  EXPECT_NEAR(d[1], -0.2, 1e-15);
  EXPECT_NEAR(n, 0.2, 1e-15);
}

TEST(FabProjection, BoxStopsOneCoordinate) {
  // x0 can only drop by 0.1; then x1 carries the rest: 0.1 + delta = 0.4.
  std::vector<double> d = project({0.1, 0.5}, {1, 1}, 0.2);
  EXPECT_NEAR(d[0], -0.1, 1e-15);
  EXPECT_NEAR(d[1], -0.3, 1e-15);
}

TEST(FabProjection, OtherSideAndMixedSigns) {
  // w . t = -0.5 < b = 1: raise x0, lower x1; g(delta) = 3 delta = 1.5.
  std::vector<double> d = project({0.5, 0.5, 0.3}, {1, -2, 0}, 1);
  EXPECT_NEAR(d[0], 0.5, 1e-15);
  EXPECT_NEAR(d[1], -0.5, 1e-15);
  EXPECT_EQ(d[2], 0.0);  // w_i = 0 never moves
}

TEST(FabProjection, UnreachableHyperplaneGoesToTheBoxEdge) {
  std::vector<double> d = project({0.1, 0.2}, {1, 1}, -1);
  EXPECT_NEAR(d[0], -0.1, 1e-15);
  EXPECT_NEAR(d[1], -0.2, 1e-15);
}

TEST(FabProjection, RandomCasesReachTheHyperplaneMinimally) {
  const int64_t D = 50;
  for (uint32_t k = 0; k < 20; ++k) {
    std::vector<double> t = ops::rand_uniform({D}, RngKey{3, 0, 0, k}, 0, 1, DType::Float64).to_vector<double>();
    std::vector<double> w = ops::rand_uniform({D}, RngKey{3, 0, 1, k}, -1, 1, DType::Float64).to_vector<double>();
    double wt = 0;
    for (int64_t i = 0; i < D; ++i) wt += w[i] * t[i];
    double b = wt + (k % 2 ? 1.0 : -1.0) * 0.05 * (1 + k);  // reachable for these sizes
    double n;
    std::vector<double> d = project(t, w, b, &n);
    double reached = 0, nn = 0;
    for (int64_t i = 0; i < D; ++i) {
      reached += w[i] * (t[i] + d[i]);
      EXPECT_GE(t[i] + d[i], -1e-15);
      EXPECT_LE(t[i] + d[i], 1 + 1e-15);
      nn = std::max(nn, std::abs(d[i]));
    }
    EXPECT_NEAR(reached, b, 1e-12) << k;
    EXPECT_NEAR(nn, n, 1e-15);
    // Minimal: with every coordinate moved as far as possible in its useful
    // direction but at most 0.999 n, the hyperplane is not reached.
    double best = 0;
    for (int64_t i = 0; i < D; ++i) {
      bool up = (b - wt) * w[i] > 0;
      double room = up ? 1 - t[i] : t[i];
      best += std::abs(w[i]) * std::min(room, 0.999 * n);
    }
    EXPECT_LT(best, std::abs(b - wt)) << k;
  }
}

TEST(FabProjection, RowsMatchOnePointAtATime) {
  // The batched routine FAB uses against the single-point one, on random rows
  // that cover every branch: reachable interior and box-bound solutions,
  // both sides, unreachable hyperplanes, zero weights, points on the box
  // edges, and a row with every weight zero.
  const int64_t n = 40, D = 257;
  std::vector<double> t = ops::rand_uniform({n, D}, RngKey{5, 0, 0, 0}, 0, 1, DType::Float64).to_vector<double>();
  std::vector<double> w = ops::rand_uniform({n, D}, RngKey{5, 0, 1, 0}, -1, 1, DType::Float64).to_vector<double>();
  std::vector<double> u = ops::rand_uniform({n, D}, RngKey{5, 0, 2, 0}, 0, 1, DType::Float64).to_vector<double>();
  std::vector<double> b(n);
  for (int64_t r = 0; r < n; ++r) {
    double wt = 0, reach = 0;
    for (int64_t i = 0; i < D; ++i) {
      size_t k = static_cast<size_t>(r * D + i);
      if (u[k] < 0.1) w[k] = 0;                        // some coordinates never move
      if (u[k] > 0.95) t[k] = u[k] > 0.975 ? 1.0 : 0.0;  // some start on the box edge
      if (r == n - 1) w[k] = 0;
      wt += w[k] * t[k];
      reach += std::abs(w[k]);
    }
    // Offsets from just off the point to beyond what the box allows.
    double frac = (r % 8) / 6.0;  // 0 .. 1.17: the last ones unreachable
    b[r] = wt + (r % 2 ? 1 : -1) * frac * 0.5 * reach;
  }
  std::vector<double> d(n * D), norms(n);
  fab_project_linf_rows(n, D, t.data(), w.data(), b.data(), d.data(), norms.data());
  std::vector<double> d1(D);
  for (int64_t r = 0; r < n; ++r) {
    double n1 = fab_project_linf(&t[r * D], &w[r * D], b[r], D, d1.data());
    EXPECT_EQ(norms[r], n1) << r;
    for (int64_t i = 0; i < D; ++i) ASSERT_EQ(d[r * D + i], d1[i]) << r << " " << i;
  }
  EXPECT_EQ(norms[n - 1], 0.0);  // nothing can move
}

TEST(Fab, TargetedFindsEveryNonRobustPointOfALinearModel) {
  LinearModel m = make_linear_model(21);
  const double eps = 0.1;
  LinearData d = make_linear_data(m, eps, 5, 5, 0.05, 22);
  FabOptions opt;
  opt.epsilon = eps;
  opt.iterations = 20;
  std::vector<int64_t> y = d.y.to_vector<int64_t>();
  Tensor adv = fab_targeted(m.fn(), d.x, y, opt);
  expect_exact(m, d, adv, eps, "fab-t");
}

TEST(Fab, FindsNearMinimalPerturbations) {
  // A linear model's linearisation is exact, so FAB-T's example against its
  // first target (the runner-up class) should sit just past the smallest
  // distance to that class's boundary (box not binding), and never below the
  // smallest distance to any other class.
  LinearModel m = make_linear_model(23);
  const double eps = 0.2;
  LinearData d = make_linear_data(m, eps, 0, 4, 0.05, 24);
  FabOptions opt;
  opt.epsilon = eps;
  opt.iterations = 100;
  std::vector<int64_t> y = d.y.to_vector<int64_t>();
  Tensor adv = fab_targeted(m.fn(), d.x, y, opt);
  std::vector<double> dist = linf_distance(adv, d.x);
  std::vector<double> xv = d.x.to_vector<double>(), w = m.weight.to_vector<double>(), b = m.bias.to_vector<double>();
  std::vector<int64_t> runner_up;
  {
    NoGradGuard g;
    HostLogits h = host_logits(m.fn()(d.x));
    for (size_t i = 0; i < y.size(); ++i) {
      int64_t best = -1;
      for (int64_t c = 0; c < m.classes; ++c)
        if (c != y[i] && (best < 0 || h.at(static_cast<int64_t>(i), c) > h.at(static_cast<int64_t>(i), best))) best = c;
      runner_up.push_back(best);
    }
  }
  const int64_t D = m.dim();
  for (size_t i = 0; i < y.size(); ++i) {
    // Distance to the boundary of classes y and j: margin / ||w_y - w_j||_1.
    auto to_boundary = [&](int64_t j) {
      double mg = b[y[i]] - b[j], l1 = 0;
      for (int64_t k = 0; k < D; ++k) {
        double dw = w[y[i] * D + k] - w[j * D + k];
        mg += dw * xv[i * D + k];
        l1 += std::abs(dw);
      }
      return mg / l1;
    };
    double nearest = INFINITY;
    for (int64_t j = 0; j < m.classes; ++j)
      if (j != y[i]) nearest = std::min(nearest, to_boundary(j));
    if (to_boundary(runner_up[i]) > eps) continue;  // broken later, by another target
    EXPECT_GE(dist[i], nearest - 1e-9) << i;
    EXPECT_LE(dist[i], to_boundary(runner_up[i]) * 1.02) << i;
  }
}
