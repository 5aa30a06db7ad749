// Per-output math of reductions along one dimension. A tensor is viewed as
// [outer, n, inner] with the reduced dimension in the middle; output element
// `out` = (o, i) reduces x[o, 0..n-1, i]. Accumulation is in double.
#pragma once
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

struct ReduceShape {
  int64_t outer, n, inner;
  ADVCL_HD int64_t base(int64_t out) const { return (out / inner) * n * inner + out % inner; }
};

template <class T>
ADVCL_HD T sum_along(const T* x, const ReduceShape& s, int64_t out) {
  const T* p = x + s.base(out);
  double acc = 0;
  for (int64_t k = 0; k < s.n; ++k) acc += static_cast<double>(p[k * s.inner]);
  return static_cast<T>(acc);
}

// Index of the first maximum (sign = 1) or minimum (sign = -1); NaN wins, as in PyTorch.
template <class T>
ADVCL_HD int64_t arg_extreme_along(const T* x, const ReduceShape& s, int64_t out, int sign) {
  const T* p = x + s.base(out);
  int64_t best = 0;
  T bv = p[0];
  for (int64_t k = 1; k < s.n; ++k) {
    T v = p[k * s.inner];
    if (bv != bv) break;  // NaN already found
    if (v != v || (sign > 0 ? v > bv : v < bv)) {
      best = k;
      bv = v;
    }
  }
  return best;
}

// Top-k of one row of length n by k selection passes (k is small in our uses:
// top-1..10 classes). Ties: lower index first. vals/idx receive k entries.
template <class T>
ADVCL_HD void topk_row(const T* row, int64_t n, int64_t k, T* vals, int64_t* idx) {
  for (int64_t j = 0; j < k; ++j) {
    int64_t best = -1;
    for (int64_t c = 0; c < n; ++c) {
      bool taken = false;
      for (int64_t q = 0; q < j; ++q) taken = taken || idx[q] == c;
      if (taken) continue;
      if (best < 0 || row[c] > row[best]) best = c;
    }
    idx[j] = best;
    vals[j] = row[best];
  }
}

// Row-wise L2 normalisation of x [rows, d]: y = x / max(||x||, eps).
template <class T>
ADVCL_HD double row_norm(const T* x, int64_t d, int64_t row) {
  double acc = 0;
  for (int64_t j = 0; j < d; ++j) {
    double v = static_cast<double>(x[row * d + j]);
    acc += v * v;
  }
  return acc > 0 ? sqrt(acc) : 0.0;
}

// One row of y = x / max(||x||, eps).
template <class T>
ADVCL_HD void l2_normalize_row(const T* x, T* y, int64_t d, int64_t r, double eps) {
  double n = row_norm(x, d, r);
  n = n > eps ? n : eps;
  for (int64_t j = 0; j < d; ++j) y[r * d + j] = static_cast<T>(static_cast<double>(x[r * d + j]) / n);
}

// Its backward: y = x/n with n = ||x|| gives dx = g/n - x (x.g)/n^3 where
// n > eps; below eps the divisor is the constant eps, so dx = g/eps.
template <class T>
ADVCL_HD void l2_normalize_backward_row(const T* x, const T* g, T* gx, int64_t d, int64_t r, double eps) {
  double n = row_norm(x, d, r);
  double dot = 0;
  for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(x[r * d + j]) * static_cast<double>(g[r * d + j]);
  for (int64_t j = 0; j < d; ++j) {
    double gj = static_cast<double>(g[r * d + j]);
    double v = n > eps ? gj / n - static_cast<double>(x[r * d + j]) * dot / (n * n * n) : gj / eps;
    gx[r * d + j] = static_cast<T>(v);
  }
}

}  // namespace advcl::kernels
