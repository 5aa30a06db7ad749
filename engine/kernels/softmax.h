// Per-row math of softmax, log-softmax, cross-entropy and KL divergence over
// [rows, C] inputs. One call handles one row; accumulation in double.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

// log(sum(exp(x - max))) + max, the log-normaliser of one row.
template <class T>
ADVCL_HD double log_sum_exp_row(const T* x, int64_t C) {
  double m = static_cast<double>(x[0]);
  for (int64_t c = 1; c < C; ++c) m = x[c] > m ? static_cast<double>(x[c]) : m;
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += exp(static_cast<double>(x[c]) - m);
  return m + log(s);
}

template <class T>
ADVCL_HD void log_softmax_row(const T* x, T* y, int64_t C) {
  double lse = log_sum_exp_row(x, C);
  for (int64_t c = 0; c < C; ++c) y[c] = static_cast<T>(static_cast<double>(x[c]) - lse);
}

template <class T>
ADVCL_HD void softmax_row(const T* x, T* y, int64_t C) {
  double lse = log_sum_exp_row(x, C);
  for (int64_t c = 0; c < C; ++c) y[c] = static_cast<T>(exp(static_cast<double>(x[c]) - lse));
}

// y = softmax(x): dx = y * (g - sum(g * y)).
template <class T>
ADVCL_HD void softmax_backward_row(const T* y, const T* g, T* gx, int64_t C) {
  double dot = 0;
  for (int64_t c = 0; c < C; ++c) dot += static_cast<double>(g[c]) * static_cast<double>(y[c]);
  for (int64_t c = 0; c < C; ++c) gx[c] = static_cast<T>(static_cast<double>(y[c]) * (static_cast<double>(g[c]) - dot));
}

// y = log_softmax(x): dx = g - exp(y) * sum(g).
template <class T>
ADVCL_HD void log_softmax_backward_row(const T* y, const T* g, T* gx, int64_t C) {
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += static_cast<double>(g[c]);
  for (int64_t c = 0; c < C; ++c) gx[c] = static_cast<T>(static_cast<double>(g[c]) - exp(static_cast<double>(y[c])) * s);
}

// Cross-entropy of one row: -log_softmax(x)[label]; 0 for an ignored label.
template <class T>
ADVCL_HD double cross_entropy_row(const T* x, int64_t C, int64_t label, int64_t ignore_index) {
  if (label == ignore_index) return 0;
  return log_sum_exp_row(x, C) - static_cast<double>(x[label]);
}

// Its gradient scaled by `scale`: (softmax(x) - onehot(label)) * scale; 0 if ignored.
template <class T>
ADVCL_HD void cross_entropy_backward_row(const T* x, T* gx, int64_t C, int64_t label, int64_t ignore_index,
                                         double scale) {
  if (label == ignore_index) {
    for (int64_t c = 0; c < C; ++c) gx[c] = T(0);
    return;
  }
  double lse = log_sum_exp_row(x, C);
  for (int64_t c = 0; c < C; ++c)
    gx[c] = static_cast<T>((exp(static_cast<double>(x[c]) - lse) - (c == label ? 1.0 : 0.0)) * scale);
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
