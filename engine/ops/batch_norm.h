// Batch normalisation over [N, C] or [N, C, H, W] inputs, per channel C, or
// over channels-last [N, H, W, C] inputs (BatchNormOptions::channels_last,
// engine/ops/layout.h).
//
// Training: normalise with the batch's mean and biased variance; update the
// running statistics in place with momentum m:
//   running_mean = (1-m) running_mean + m mean
//   running_var  = (1-m) running_var  + m var * n/(n-1)   (unbiased)
// Eval: normalise with the running statistics.
//
// batch_norm_views normalises V equal views stacked along the batch
// dimension in one pass, each view with its own statistics and its own
// parameter set, as V separate calls in view order would (see
// engine/kernels/batch_norm.h for the layout and the two-level reduction).
// The batch statistics are per-(unit, channel) (sum, sum of squares, count)
// so that a synchronised mode can all-reduce exactly those three.
#pragma once
#include <functional>
#include <vector>

#include "engine/tensor.h"

namespace advcl::ops {

struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
  bool channels_last = false;  // a 4-D input is [N, H, W, C]
  bool relu = false;           // then ReLU, in the same pass: relu(batch_norm(x))
};

// weight, bias: [C] (may be undefined: then 1 and 0). running_mean/var: [C]
// (may be undefined in training mode: then not updated).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormOptions opt = {});

// Per-channel sums of each statistics unit: sum and sum_sq are float64
// [units * C] on the input's device (unit-major); count is the number of
// values per channel in one full unit (rows * H * W). A synchronised batch
// norm all-reduces these three.
struct ChannelStats {
  Tensor sum, sum_sq;
  int64_t count = 0;
};
ChannelStats batch_norm_stats(const Tensor& x, bool channels_last = false);

// The backward's per-(unit, channel) sums, float64 on the input's device,
// replaced in place by a synchronised mode's all-reduce.
using ReduceSums = void (*)(Tensor& sum_g, Tensor& sum_gx);
// The forward's statistics, likewise (identity when empty).
using ReduceStats = std::function<void(ChannelStats&)>;

// Training-mode batch norm of one view from given statistics (e.g.
// all-reduced across ranks).
Tensor batch_norm_with_stats(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, const ChannelStats& stats, BatchNormOptions opt,
                             ReduceSums reduce_backward_sums = nullptr);

// One torch BatchNorm layer's tensors (any may be undefined, as for batch_norm).
struct BatchNormParams {
  Tensor weight, bias, running_mean, running_var;
};

struct BatchNormViews {
  std::vector<BatchNormParams> sets;  // the distinct parameter sets of the call
  std::vector<int> view_set;          // per view, in stacking order: an index into `sets`
  int64_t group_rows = 0;             // ghost statistics: groups of this many rows per view (0: whole view)
};

// x holds view_set.size() equal views along dimension 0. Training: per
// (view, group) statistics (reduce_stats may all-reduce them before use);
// each view's first group updates its set's running statistics, once per
// view, in view order. Eval: each view uses its set's running statistics.
// One node records the whole call: its backward returns the input gradient
// and each set's weight and bias gradients (summed over its views).
Tensor batch_norm_views(const Tensor& x, const BatchNormViews& views, BatchNormOptions opt,
                        const ReduceStats& reduce_stats = {}, ReduceSums reduce_backward_sums = nullptr);

}  // namespace advcl::ops
