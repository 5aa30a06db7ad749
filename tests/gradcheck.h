// Finite-difference gradient checks in float64, for every op's backward.
//
// For f: inputs -> output, we compare d<r, f(x)>/dx from autograd with the
// central difference (L(x + h e_i) - L(x - h e_i)) / 2h of L(x) = <r, f(x)>,
// where r is a fixed random weighting of the output (so every output element
// matters and errors cannot cancel).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "engine/ops.h"

namespace advcl::testing {

// Random float64 tensor in [lo, hi) from the counter-based generator.
inline Tensor random_tensor(const Shape& shape, uint32_t seed, double lo = -1, double hi = 1) {
  RngKey key{1234, static_cast<uint32_t>(RngPurpose::Test), seed, 0};
  return ops::rand_uniform(shape, key, lo, hi, DType::Float64);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

inline double weighted_sum(const Tensor& y, const Tensor& r) {
  std::vector<double> a = y.to_vector<double>(), b = r.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks the gradients of f with respect to inputs[i] for every i in `which`
// (default: all). Inputs must be float64.
inline void expect_gradients_match(const Fn& f, std::vector<Tensor> inputs, double tol = 1e-6,
                                   std::vector<size_t> which = {}, double h = 1e-6) {
  if (which.empty())
    for (size_t i = 0; i < inputs.size(); ++i) which.push_back(i);
  for (size_t i : which) inputs[i].set_requires_grad(true);
  Tensor y = f(inputs);
  Tensor r = random_tensor(y.shape(), 999);
  std::vector<Tensor> targets;
  for (size_t i : which) targets.push_back(inputs[i]);
  std::vector<Tensor> analytic = grad(y, targets, r);
  NoGradGuard no_grad;
  for (size_t t = 0; t < which.size(); ++t) {
    Tensor x = inputs[which[t]];
    double* p = x.data<double>();
    std::vector<double> a = analytic[t].to_vector<double>();
    double worst = 0;
    int64_t worst_at = -1;
    for (int64_t e = 0; e < x.numel(); ++e) {
      double orig = p[e];
      p[e] = orig + h;
      double up = weighted_sum(f(inputs), r);
      p[e] = orig - h;
      double down = weighted_sum(f(inputs), r);
      p[e] = orig;
      double numeric = (up - down) / (2 * h);
      double err = std::fabs(numeric - a[e]) / std::max(1.0, std::fabs(numeric));
      if (err > worst) {
        worst = err;
        worst_at = e;
      }
    }
    EXPECT_LE(worst, tol) << "input " << which[t] << " " << shape_str(x.shape()) << ": worst relative error " << worst
                          << " at element " << worst_at;
  }
}

}  // namespace advcl::testing
