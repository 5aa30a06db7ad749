// CUDA entry points of batch norm (implemented in batch_norm.cu). Per-channel
// arrays (mean, invstd, w, b, sums) are double on the device, length C.
#pragma once
#include "engine/kernels/batch_norm.h"

namespace advcl::cuda_ops {

template <class T>
void bn_channel_sums(const T* x, const kernels::BNShape& s, double* sum, double* sum_sq);
template <class T>
void bn_normalize(const T* x, const kernels::BNShape& s, const double* mean, const double* invstd, const double* w,
                  const double* b, T* y);
template <class T>
void bn_backward_sums(const T* g, const T* x, const kernels::BNShape& s, const double* mean, double* sum_g,
                      double* sum_gx);
// Per channel: the mean and invstd to normalise with; training also updates
// the running statistics (of type R, either may be null) in place.
template <class R>
void bn_train_channels(const double* sum, const double* sum_sq, int64_t C, double count, double eps, double momentum,
                       R* running_mean, R* running_var, double* mean, double* invstd);
template <class R>
void bn_eval_channels(const R* running_mean, const R* running_var, int64_t C, double eps, double* mean,
                      double* invstd);
// training: dx per element from the sums over `count` values (global when
// synchronised); eval (training = false): dx = g * w * invstd
template <class T>
void bn_backward_elem(const T* g, const T* x, const kernels::BNShape& s, const double* mean, const double* invstd,
                      const double* w, const double* sum_g, const double* sum_gx, bool training, double count, T* gx);

}  // namespace advcl::cuda_ops
