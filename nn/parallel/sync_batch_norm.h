// Synchronised batch norm across the ranks of world(): the hook that
// nn::BatchNorm calls (nn/batch_norm.h). Forward all-reduces each channel's
// (sum, sum of squares) and the value COUNT, so ranks holding different
// numbers of images (the last batch) still normalise with the statistics of
// the whole global batch, and the running variance is unbiased over the
// global count. Backward all-reduces the two per-channel gradient sums.
//
// Every rank must run every training-mode BN call in the same order (the
// same views, statistic sets and group structure): each call is a
// collective. Eval-mode calls use running statistics and communicate nothing.
// The hooks use the process-global world() (the backward hook is a plain
// function pointer and cannot carry a communicator).
#pragma once
#include <memory>

#include "nn/batch_norm.h"

namespace advcl::dist {

// The hooks for nn::BatchNormOptions::sync / nn::ResNetOptions::bn_sync.
std::shared_ptr<const nn::BatchNormSync> make_batch_norm_sync();

}  // namespace advcl::dist
