// Per-channel math of batch normalisation over x viewed as [N, C, S]
// (S = H*W, or 1 for [N, C] inputs). The statistics are split into
// per-channel sum / sum of squares / count so that a synchronised mode can
// all-reduce exactly those before finishing; likewise the backward's two
// per-channel sums.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

struct BNShape {
  int64_t N, C, S;
  ADVCL_HD int64_t channel(int64_t i) const { return (i / S) % C; }
};

// Sum and sum of squares of one contiguous plane of S values, added to
// sum / sum_sq. Four independent accumulators break the dependency chain of
// a single running sum (and let the compiler vectorise); the order of the
// additions is fixed, so results are deterministic.
template <class T>
ADVCL_HD void bn_plane_sums(const T* p, int64_t S, double& sum, double& sum_sq) {
  double s[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 4 <= S; k += 4)
    for (int l = 0; l < 4; ++l) {
      double v = static_cast<double>(p[k + l]);
      s[l] += v;
      q[l] += v * v;
    }
  for (; k < S; ++k) {
    double v = static_cast<double>(p[k]);
    s[0] += v;
    q[0] += v * v;
  }
  sum += (s[0] + s[1]) + (s[2] + s[3]);
  sum_sq += (q[0] + q[1]) + (q[2] + q[3]);
}

// sum and sum of squares of channel c over all N planes.
template <class T>
ADVCL_HD void bn_channel_sums(const T* x, const BNShape& s, int64_t c, double& sum, double& sum_sq) {
  sum = 0;
  sum_sq = 0;
  for (int64_t n = 0; n < s.N; ++n) bn_plane_sums(x + (n * s.C + c) * s.S, s.S, sum, sum_sq);
}

// From (sum, sum_sq, count): mean and biased variance (clamped at 0 against rounding).
ADVCL_HD void bn_mean_var(double sum, double sum_sq, double count, double& mean, double& var) {
  mean = sum / count;
  var = sum_sq / count - mean * mean;
  var = var > 0 ? var : 0;
}

// Training, channel by channel: the mean and 1/sqrt(var + eps) to normalise
// with, from the batch sums, and the momentum update of the running
// statistics (either pointer may be null) with the UNBIASED variance
// var * count / (count - 1).
template <class R>
ADVCL_HD void bn_train_channel(double sum, double sum_sq, double count, double eps, double momentum, R* running_mean,
                               R* running_var, double& mean, double& invstd) {
  double var;
  bn_mean_var(sum, sum_sq, count, mean, var);
  invstd = 1.0 / sqrt(var + eps);
  if (running_mean)
    *running_mean = static_cast<R>((1 - momentum) * static_cast<double>(*running_mean) + momentum * mean);
  if (running_var)
    *running_var =
        static_cast<R>((1 - momentum) * static_cast<double>(*running_var) + momentum * var * (count / (count - 1)));
}

// Eval: normalise with the running statistics.
template <class R>
ADVCL_HD void bn_eval_channel(R running_mean, R running_var, double eps, double& mean, double& invstd) {
  mean = static_cast<double>(running_mean);
  invstd = 1.0 / sqrt(static_cast<double>(running_var) + eps);
}

// y = (x - mean) * invstd * w + b, for one element.
template <class T>
ADVCL_HD T bn_normalize(T x, double mean, double invstd, double w, double b) {
  return static_cast<T>((static_cast<double>(x) - mean) * invstd * w + b);
}

// The backward's two per-channel sums, sum(g) and sum(g * (x - mean)), over
// channel c (four accumulators per plane, as bn_plane_sums).
template <class T>
ADVCL_HD void bn_backward_sums(const T* g, const T* x, const BNShape& s, int64_t c, double mean, double& sum_g,
                               double& sum_gx) {
  sum_g = 0;
  sum_gx = 0;
  for (int64_t n = 0; n < s.N; ++n) {
    const T* gp = g + (n * s.C + c) * s.S;
    const T* xp = x + (n * s.C + c) * s.S;
    double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 4 <= s.S; k += 4)
      for (int l = 0; l < 4; ++l) {
        double gv = static_cast<double>(gp[k + l]);
        a[l] += gv;
        b[l] += gv * (static_cast<double>(xp[k + l]) - mean);
      }
    for (; k < s.S; ++k) {
      double gv = static_cast<double>(gp[k]);
      a[0] += gv;
      b[0] += gv * (static_cast<double>(xp[k]) - mean);
    }
    sum_g += (a[0] + a[1]) + (a[2] + a[3]);
    sum_gx += (b[0] + b[1]) + (b[2] + b[3]);
  }
}

// Training-mode input gradient of one element, with xhat = (x - mean) * invstd:
//   dx = w * invstd * (g - sum_g / count - xhat * sum_gx * invstd / count)
template <class T>
ADVCL_HD T bn_backward_elem(T g, T x, double mean, double invstd, double w, double sum_g, double sum_gx,
                            double count) {
  double xhat = (static_cast<double>(x) - mean) * invstd;
  return static_cast<T>(w * invstd * (static_cast<double>(g) - sum_g / count - xhat * sum_gx * invstd / count));
}

}  // namespace advcl::kernels
