// Batch normalisation over [N, C] or [N, C, H, W] inputs, per channel C.
//
// Training: normalise with the batch's mean and biased variance; update the
// running statistics in place with momentum m:
//   running_mean = (1-m) running_mean + m mean
//   running_var  = (1-m) running_var  + m var * n/(n-1)   (unbiased)
// Eval: normalise with the running statistics.
// The batch statistics are computed as per-channel (sum, sum of squares,
// count) so that a synchronised mode can all-reduce exactly those three.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace advcl::ops {

struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
};

// weight, bias: [C] (may be undefined: then 1 and 0). running_mean/var: [C]
// (may be undefined in training mode: then not updated).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormOptions opt = {});

// Per-channel sums over N (and H, W): {sum [C], sum_sq [C]} as float64 on the
// input's device, and count = x.numel() / C. A synchronised batch norm
// all-reduces these three, then normalises with batch_norm_with_stats.
struct ChannelStats {
  Tensor sum, sum_sq;
  int64_t count = 0;
};
ChannelStats batch_norm_stats(const Tensor& x);

// Training-mode batch norm from given statistics (e.g. all-reduced across
// ranks or summed over a group). The backward's per-channel sums pass
// through `reduce_backward_sums` (identity when null) so that a synchronised
// mode can all-reduce them too.
// The sums are float64 [C] tensors on the input's device, replaced in place.
using ReduceSums = void (*)(Tensor& sum_g, Tensor& sum_gx);
Tensor batch_norm_with_stats(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, const ChannelStats& stats, BatchNormOptions opt,
                             ReduceSums reduce_backward_sums = nullptr);

}  // namespace advcl::ops
