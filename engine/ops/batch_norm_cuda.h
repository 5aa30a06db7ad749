// CUDA entry points of batch norm (implemented in batch_norm.cu): launches of
// the engine/kernels/batch_norm.h math. Per-(unit, channel) arrays (sums,
// mean, invstd, w, b) are double on the device, [units * C], unit-major.
#pragma once
#include "engine/kernels/batch_norm.h"

namespace advcl::cuda_ops {

// The statistics in two fixed-order levels: one block per (unit, channel,
// chunk) writes its shifted sums to part_s / part_q ([units * C * chunks]
// scratch), then one thread per (unit, channel) combines them in double into
// sum / sum_sq. Same bits on every run.
template <class T>
void bn_stats(const T* x, const kernels::BNLayout& L, double* part_s, double* part_q, double* sum, double* sum_sq);
// kernels::bn_finish_channel for every channel (training updates the running
// statistics in place).
template <class P>
void bn_finish(const kernels::BNLayout& L, const kernels::BnViewParams<P>& p, bool training, double full_count,
               double eps, double momentum, const double* sum, const double* sum_sq, double* mean, double* invstd,
               double* w, double* b);
template <class T>
// relu: then max(0, y) (BatchNormOptions::relu).
void bn_normalize(const T* x, const kernels::BNLayout& L, const double* mean, const double* invstd, const double* w,
                  const double* b, bool relu, T* y);
// The backward's sums, in the same two levels as bn_stats.
template <class T>
void bn_backward_sums(const T* g, const T* x, const kernels::BNLayout& L, const double* mean, double* part_g,
                      double* part_gx, double* sum_g, double* sum_gx);
// training: dx per element from the sums (global when synchronised); eval
// (training = false): dx = g * w * invstd
template <class T>
void bn_backward_elem(const T* g, const T* x, const kernels::BNLayout& L, const double* mean, const double* invstd,
                      const double* w, const double* sum_g, const double* sum_gx, bool training, double full_count,
                      T* gx);
// Each set's weight and bias gradients, [sets * C].
void bn_param_grads(const kernels::BNLayout& L, const kernels::BnViewSets& view_sets, int64_t sets,
                    const double* sum_g, const double* sum_gx, const double* invstd, double* gw, double* gb);

}  // namespace advcl::cuda_ops
