// Batch normalisation with named statistic sets and per-view statistics.
//
// One layer holds K independent sets of (weight, bias, running_mean,
// running_var, num_batches_tracked). With K > 1 the state-dict names are the
// reference's `bn_list.{i}.weight` ...; with K = 1 they are plain `weight` ...
// (PyTorch's BatchNorm2d/1d, as in the reference's finetuning model and heads).
//
// A call names the set of each VIEW: the input holds V views stacked along the
// batch dimension (V*B rows), and view v is normalised with its own batch
// statistics and its own set, whose running statistics it updates, exactly as
// V separate calls in view order would. So the convolutions can run on all
// views at once while BN stays per view, as the reference's separate forward
// calls are.
//
// Ghost statistics (group_size G > 0): within each view, statistics are taken
// over consecutive groups of G images (the last may be smaller), as the
// reference's nn.DataParallel computes them per GPU (torch.chunk gives chunks
// of ceil(B / n_gpu)). Running statistics then follow the FIRST group only:
// DataParallel's replica 0 shares the module's buffers and the other replicas'
// updates are discarded.
//
// A call is ONE ops::batch_norm_views op over the whole batch: per-(view,
// group) statistics in one pass, no per-view slices or concatenation, one
// backward node.
//
// Synchronised statistics: a BatchNormSync hook all-reduces the call's
// per-(view, channel) (sum, sum_sq, count) before normalising, and the
// backward's two per-(view, channel) sums: one collective per layer call,
// whatever the number of views. A distributed layer supplies the hook;
// nothing here talks to other ranks.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/ops/batch_norm.h"
#include "nn/module.h"

namespace advcl::nn {

// The statistic set of each view, in the order the views are stacked.
struct BnSets {
  std::vector<int> per_view;
  BnSets(int set) : per_view{set} {}  // NOLINT: one view is the common case
  BnSets(std::initializer_list<int> sets) : per_view(sets) {}
  explicit BnSets(std::vector<int> sets) : per_view(std::move(sets)) {}
  // `views` views all using `set` (each with its own statistics).
  static BnSets repeat(int set, int views) { return BnSets(std::vector<int>(static_cast<size_t>(views), set)); }
  int64_t views() const { return static_cast<int64_t>(per_view.size()); }
};

// Hook for synchronised BN (see the top of the file). The statistics hold
// [views * C] values (view-major).
struct BatchNormSync {
  ops::ReduceStats all_reduce_stats;
  ops::ReduceSums all_reduce_backward_sums = nullptr;
};

struct BatchNormOptions {
  int num_sets = 1;
  double momentum = 0.1;
  double eps = 1e-5;
  int64_t group_size = 0;  // 0: statistics over the whole view
  std::shared_ptr<const BatchNormSync> sync;  // null: local statistics
};

// One statistic set: the tensors of one torch BatchNorm layer.
class BnStatSet : public Module {
 public:
  explicit BnStatSet(int64_t channels);
  Tensor weight, bias, running_mean, running_var;
  Tensor num_batches_tracked;  // int64 scalar on the CPU (a host counter)
};

// For [N, C] (BatchNorm1d) and [N, C, H, W] (BatchNorm2d) inputs alike.
class BatchNorm : public Module {
 public:
  BatchNorm(int64_t channels, BatchNormOptions options = {});
  // channels_last: x is [N, H, W, C] (engine/ops/layout.h). then_relu:
  // relu(bn(x)) in the same pass (one op, one node).
  Tensor forward(const Tensor& x, const BnSets& sets, bool channels_last = false, bool then_relu = false);
  BnStatSet& set(int i);
  int num_sets() const { return static_cast<int>(sets_.size()); }
  int64_t channels() const { return channels_; }
  const BatchNormOptions& options() const { return options_; }

 private:
  int64_t channels_;
  BatchNormOptions options_;
  std::vector<std::unique_ptr<BnStatSet>> sets_;
};

}  // namespace advcl::nn
