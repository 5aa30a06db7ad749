// Per-row math of softmax, log-softmax, cross-entropy and KL divergence over
// [rows, C] inputs. One call handles one row (or one lane's share of it);
// accumulation in double.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

// The pieces of a row's reductions, over the elements lane, lane + lanes,
// ... of the row: the CPU runs them with one lane (the whole row, in order);
// a GPU warp with 32 lanes combines its lanes' partials in a fixed shuffle
// tree (engine/ops/softmax.cu). Accumulation in double.

// Partial max (-inf for a lane with no element).
template <class T>
ADVCL_HD double row_max_part(const T* x, int64_t C, int64_t lane, int64_t lanes) {
  double m = -INFINITY;
  for (int64_t c = lane; c < C; c += lanes) m = x[c] > m ? static_cast<double>(x[c]) : m;
  return m;
}

// Partial sum of exp(x - m), m the row's max.
template <class T>
ADVCL_HD double row_sum_exp_part(const T* x, int64_t C, double m, int64_t lane, int64_t lanes) {
  double s = 0;
  for (int64_t c = lane; c < C; c += lanes) s += exp(static_cast<double>(x[c]) - m);
  return s;
}

// Partial sum(a * b) (b null: sum(a)).
template <class T>
ADVCL_HD double row_dot_part(const T* a, const T* b, int64_t C, int64_t lane, int64_t lanes) {
  double s = 0;
  for (int64_t c = lane; c < C; c += lanes) s += static_cast<double>(a[c]) * (b ? static_cast<double>(b[c]) : 1.0);
  return s;
}

// kind 0: y = softmax(x); 1: y = log_softmax(x), given lse = log(sum(exp(x))).
template <class T>
ADVCL_HD void softmax_write_part(const T* x, T* y, int64_t C, double lse, int kind, int64_t lane, int64_t lanes) {
  for (int64_t c = lane; c < C; c += lanes) {
    double v = static_cast<double>(x[c]) - lse;
    y[c] = static_cast<T>(kind == 0 ? exp(v) : v);
  }
}

// Backward from y = softmax(x) (kind 0, s = sum(g * y)): dx = y * (g - s);
// from y = log_softmax(x) (kind 1, s = sum(g)): dx = g - exp(y) * s.
template <class T>
ADVCL_HD void softmax_backward_write_part(const T* y, const T* g, T* gx, int64_t C, double s, int kind, int64_t lane,
                                          int64_t lanes) {
  for (int64_t c = lane; c < C; c += lanes) {
    double yv = static_cast<double>(y[c]), gv = static_cast<double>(g[c]);
    gx[c] = static_cast<T>(kind == 0 ? yv * (gv - s) : gv - exp(yv) * s);
  }
}

// log(sum(exp(x - max))) + max, the log-normaliser of one row.
template <class T>
ADVCL_HD double log_sum_exp_row(const T* x, int64_t C) {
  double m = row_max_part(x, C, 0, 1);
  return m + log(row_sum_exp_part(x, C, m, 0, 1));
}

template <class T>
ADVCL_HD void log_softmax_row(const T* x, T* y, int64_t C) {
  softmax_write_part(x, y, C, log_sum_exp_row(x, C), 1, 0, 1);
}

template <class T>
ADVCL_HD void softmax_row(const T* x, T* y, int64_t C) {
  softmax_write_part(x, y, C, log_sum_exp_row(x, C), 0, 0, 1);
}

// y = softmax(x): dx = y * (g - sum(g * y)).
template <class T>
ADVCL_HD void softmax_backward_row(const T* y, const T* g, T* gx, int64_t C) {
  softmax_backward_write_part(y, g, gx, C, row_dot_part(g, y, C, 0, 1), 0, 0, 1);
}

// y = log_softmax(x): dx = g - exp(y) * sum(g).
template <class T>
ADVCL_HD void log_softmax_backward_row(const T* y, const T* g, T* gx, int64_t C) {
  softmax_backward_write_part(y, g, gx, C, row_dot_part<T>(g, nullptr, C, 0, 1), 1, 0, 1);
}

// Cross-entropy of one row: -log_softmax(x)[label]; 0 for an ignored label.
template <class T>
ADVCL_HD double cross_entropy_row(const T* x, int64_t C, int64_t label, int64_t ignore_index) {
  if (label == ignore_index) return 0;
  return log_sum_exp_row(x, C) - static_cast<double>(x[label]);
}

// Its gradient for the lane's elements, given the row's lse (label not ignored).
template <class T>
ADVCL_HD void cross_entropy_backward_part(const T* x, T* gx, int64_t C, int64_t label, double lse, double scale,
                                          int64_t lane, int64_t lanes) {
  for (int64_t c = lane; c < C; c += lanes)
    gx[c] = static_cast<T>((exp(static_cast<double>(x[c]) - lse) - (c == label ? 1.0 : 0.0)) * scale);
}

// Its gradient scaled by `scale`: (softmax(x) - onehot(label)) * scale; 0 if ignored.
template <class T>
ADVCL_HD void cross_entropy_backward_row(const T* x, T* gx, int64_t C, int64_t label, int64_t ignore_index,
                                         double scale) {
  if (label == ignore_index) {
    for (int64_t c = 0; c < C; ++c) gx[c] = T(0);
    return;
  }
  cross_entropy_backward_part(x, gx, C, label, log_sum_exp_row(x, C), scale, 0, 1);
}

// One element of KL(target || exp(input)) = t (log t - i), 0 where t == 0
// (PyTorch's convention), and its partial derivatives.
template <class T>
ADVCL_HD double kl_elem(T input, T target) {
  double t = static_cast<double>(target);
  return t > 0 ? t * (log(t) - static_cast<double>(input)) : 0.0;
}
template <class T>
ADVCL_HD double kl_d_input(T, T target) { return -static_cast<double>(target); }
template <class T>
ADVCL_HD double kl_d_target(T input, T target) {
  double t = static_cast<double>(target);
  return t > 0 ? log(t) + 1.0 - static_cast<double>(input) : 0.0;
}

}  // namespace advcl::kernels
