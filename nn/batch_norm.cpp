#include "nn/batch_norm.h"

#include <algorithm>


namespace advcl::nn {

BnStatSet::BnStatSet(int64_t channels) {
  weight = register_parameter("weight", Tensor::ones({channels}), {InitKind::Ones, 0});
  bias = register_parameter("bias", Tensor::zeros({channels}), {InitKind::Zeros, 0});
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::Int64), /*host=*/true);
}

BatchNorm::BatchNorm(int64_t channels, BatchNormOptions options) : channels_(channels), options_(std::move(options)) {
  if (channels <= 0) fail("BatchNorm: channels must be positive, got ", channels);
  if (options_.num_sets < 1) fail("BatchNorm: num_sets must be at least 1, got ", options_.num_sets);
  if (options_.group_size < 0) fail("BatchNorm: group_size must be >= 0, got ", options_.group_size);
  if (options_.group_size == 1) fail("BatchNorm: group_size 1 leaves one value per channel; use 0 or >= 2");
  if (options_.group_size > 0 && options_.sync)
    fail("BatchNorm: group_size (ghost statistics) and synchronised statistics exclude each other");
  for (int i = 0; i < options_.num_sets; ++i) {
    sets_.push_back(std::make_unique<BnStatSet>(channels));
    // K > 1: the reference's batch_norm_multiple (`bn_list.{i}.`); K = 1: a plain BatchNorm.
    register_module(options_.num_sets > 1 ? "bn_list." + std::to_string(i) : "", *sets_.back());
  }
}

BnStatSet& BatchNorm::set(int i) {
  if (i < 0 || i >= num_sets()) fail("BatchNorm: statistic set ", i, " does not exist (the layer has ", num_sets(), ")");
  return *sets_[static_cast<size_t>(i)];
}

Tensor BatchNorm::forward(const Tensor& x, const BnSets& sets, bool channels_last, bool then_relu) {
  if (channels_last && (x.dim() != 4 || x.size(3) != channels_))
    fail("BatchNorm(", channels_, " channels): expected a channels-last input [N, H, W, ", channels_, "], got ",
         shape_str(x.shape()));
  if (!channels_last && ((x.dim() != 2 && x.dim() != 4) || x.size(1) != channels_))
    fail("BatchNorm(", channels_, " channels): expected input [N, ", channels_, "] or [N, ", channels_,
         ", H, W], got ", shape_str(x.shape()));
  int64_t V = sets.views(), N = x.size(0);
  if (V < 1) fail("BatchNorm: no statistic set given");
  if (N % V != 0) fail("BatchNorm: ", N, " rows do not split into ", V, " equal views");
  for (int s : sets.per_view) set(s);  // validates every index before any update
  int64_t B = N / V, G = options_.group_size;
  bool training = is_training();
  bool ghost = training && G > 0 && G < B;
  if (ghost && B % G == 1)
    fail("BatchNorm: group_size ", G, " leaves a last group of one image in a view of ", B,
         " (its variance is undefined)");
  // The call's distinct sets, and each view's index among them.
  ops::BatchNormViews v;
  std::vector<int> used;
  bool one_set = std::all_of(sets.per_view.begin(), sets.per_view.end(), [&](int s) { return s == sets.per_view[0]; });
  // In eval mode every view of one set is normalised alike: one view.
  std::vector<int> per_view = !training && one_set ? std::vector<int>{sets.per_view[0]} : sets.per_view;
  for (int s : per_view) {
    auto it = std::find(used.begin(), used.end(), s);
    if (it == used.end()) {
      used.push_back(s);
      BnStatSet& st = set(s);
      v.sets.push_back({st.weight, st.bias, st.running_mean, st.running_var});
      it = used.end() - 1;
    }
    v.view_set.push_back(static_cast<int>(it - used.begin()));
  }
  v.group_rows = ghost ? G : 0;
  const BatchNormSync* sync = training ? options_.sync.get() : nullptr;
  Tensor y = ops::batch_norm_views(x, v, ops::BatchNormOptions{training, options_.momentum, options_.eps, channels_last, then_relu},
                                   sync ? sync->all_reduce_stats : ops::ReduceStats(),
                                   sync ? sync->all_reduce_backward_sums : nullptr);
  // One running-statistics update per view, as one torch BN call makes.
  if (training)
    for (int s : per_view) set(s).num_batches_tracked.data<int64_t>()[0] += 1;
  return y;
}

}  // namespace advcl::nn
