// A linear classifier logits = W vec(x) + b on tiny images, where the exact
// L-inf robustness of a point is known in closed form. Shared by the
// AutoAttack, APGD, FAB and Square tests.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "advcl/attacks/autoattack_util.h"
#include "engine/ops.h"

namespace advcl::autoattack::test_model {

struct LinearModel {
  int64_t classes = 10, C = 3, H = 4, W = 4;
  Tensor weight, bias;  // [classes, D], [classes], float64
  int64_t calls = 0;

  int64_t dim() const { return C * H * W; }
  LogitsFn fn() {
    return [this](const Tensor& x) {
      ++calls;
      return ops::linear(ops::flatten(x), weight, bias);
    };
  }
  // min over j != y of (w_y - w_j) . x + (b_y - b_j) - eps ||w_y - w_j||_1:
  // > 0 exactly when no point of the eps-ball is misclassified (for x at
  // least eps inside [0, 1], the box never binds).
  double certified_margin(const std::vector<double>& x, int64_t y, double eps) const {
    std::vector<double> w = weight.to_vector<double>(), b = bias.to_vector<double>();
    const int64_t D = dim();
    double best = INFINITY;
    for (int64_t j = 0; j < classes; ++j) {
      if (j == y) continue;
      double m = b[static_cast<size_t>(y)] - b[static_cast<size_t>(j)], l1 = 0;
      for (int64_t i = 0; i < D; ++i) {
        double dw = w[static_cast<size_t>(y * D + i)] - w[static_cast<size_t>(j * D + i)];
        m += dw * x[static_cast<size_t>(i)];
        l1 += std::abs(dw);
      }
      best = std::min(best, m - eps * l1);
    }
    return best;
  }
};

inline LinearModel make_linear_model(uint64_t seed) {
  LinearModel m;
  m.weight = ops::rand_uniform({m.classes, m.dim()}, RngKey{seed, 0, 1, 0}, -1, 1, DType::Float64);
  m.bias = ops::rand_uniform({m.classes}, RngKey{seed, 0, 2, 0}, -0.5, 0.5, DType::Float64);
  return m;
}

// Points in [eps, 1 - eps], labelled with the model's prediction, picked so
// that `robust` of them are certified robust and `fragile` are not, each by a
// clear gap (certified margin > gap, or < -fragile_gap; fragile_gap < 0
// means gap) so that no attack needs to be exact.
struct LinearData {
  Tensor x, y;
  std::vector<uint8_t> certified;  // per point
};

inline LinearData make_linear_data(const LinearModel& m, double eps, int robust, int fragile, double gap,
                                   uint64_t seed, double fragile_gap = -1) {
  if (fragile_gap < 0) fragile_gap = gap;
  std::vector<double> xs;
  std::vector<int64_t> ys;
  std::vector<uint8_t> cert;
  int have_r = 0, have_f = 0;
  const int64_t D = m.dim();
  for (uint32_t k = 0; (have_r < robust || have_f < fragile) && k < 100000; ++k) {
    std::vector<double> x =
        ops::rand_uniform({1, D}, RngKey{seed, 0, 3, k}, eps, 1 - eps, DType::Float64).to_vector<double>();
    Tensor logits = ops::linear(Tensor::from_vector<double>(x, {1, D}), m.weight, m.bias);
    std::vector<double> z = logits.to_vector<double>();
    int64_t y = std::max_element(z.begin(), z.end()) - z.begin();
    double cm = m.certified_margin(x, y, eps);
    bool take = (cm > gap && have_r < robust) || (cm < -fragile_gap && have_f < fragile);
    if (!take) continue;
    (cm > 0 ? have_r : have_f)++;
    xs.insert(xs.end(), x.begin(), x.end());
    ys.push_back(y);
    cert.push_back(cm > 0);
  }
  LinearData d;
  const int64_t n = static_cast<int64_t>(ys.size());
  d.x = Tensor::from_vector<double>(xs, {n, m.C, m.H, m.W});
  d.y = Tensor::from_vector<int64_t>(ys, {n});
  d.certified = cert;
  return d;
}

// The predicted class of each row.
inline std::vector<int64_t> predict(LinearModel& m, const Tensor& x) {
  NoGradGuard no_grad;
  return host_logits(m.fn()(x)).pred;
}

// Checks an attack's output against the exact answer on the linear model:
// inside [0, 1] and the eps-ball, every certified point still correct, every
// other point misclassified.
inline void expect_exact(LinearModel& m, const LinearData& d, const Tensor& adv, double eps, const char* what) {
  std::vector<int64_t> pred = predict(m, adv), y = d.y.to_vector<int64_t>();
  std::vector<double> dist = linf_distance(adv, d.x);
  for (double v : adv.to_vector<double>()) {
    ASSERT_GE(v, 0.0) << what;
    ASSERT_LE(v, 1.0) << what;
  }
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_LE(dist[i], eps + 1e-12) << what << " point " << i;
    if (d.certified[i])
      EXPECT_EQ(pred[i], y[i]) << what << " broke certified point " << i;
    else
      EXPECT_NE(pred[i], y[i]) << what << " missed non-robust point " << i;
  }
}

inline std::vector<int64_t> iota_ids(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

}  // namespace advcl::autoattack::test_model
