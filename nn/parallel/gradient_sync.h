// Data-parallel gradients: every rank trains the same model on its own shard
// of the batch; before the optimiser step the gradients are averaged over
// the ranks, so every rank takes the same step and the parameters stay
// identical (as PyTorch's DistributedDataParallel).
//
// Equivalence with one process: with a loss that is a mean over the rank's
// own samples and equal shards, the mean of the ranks' gradients IS the
// gradient of the mean over the whole batch. With unequal shards (the last
// batch of an epoch) scale each rank's loss by local_loss_scale() first: the
// mean of the scaled gradients is then again the whole batch's gradient,
// also through synchronised batch norm (whose input gradient mixes all
// ranks' upstream gradients, which must therefore share one scale).
#pragma once
#include <cstdint>

#include "nn/parallel/communicator.h"
#include "nn/module.h"

namespace advcl::dist {

// Replaces each parameter's gradient by its mean over the ranks, in place
// (one all-reduce in float64 for all of them, so every rank gets bitwise the
// same result). A parameter that has no gradient on some ranks counts as
// zero there; one without a gradient on every rank keeps none (SGD then
// skips it on every rank alike). Every rank must pass the same parameters in
// the same order; the call checks the element count. No-op for one rank.
void average_gradients(const nn::StateDict& params, Communicator& comm = world());

// The factor for a rank's per-sample-mean loss that makes averaged gradients
// exact with unequal shards: local_count * size / (sum of local_count over
// the ranks). 1 for equal shards and for one rank. A collective.
double local_loss_scale(int64_t local_count, Communicator& comm = world());

}  // namespace advcl::dist
