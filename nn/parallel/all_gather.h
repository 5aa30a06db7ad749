// A differentiable all-gather along the batch dimension, for losses that
// need the whole global batch: SupCon's denominator runs over every image
// of every view, so each rank must see all ranks' features (the reference's
// nn.DataParallel computed the loss on the gathered outputs too).
//
// Backward sums the output gradient over the ranks and returns this rank's
// rows. So if every rank computes the same loss from the gathered tensor,
// each rank's upstream gradient is world-size times the true one: exactly
// the scale of a per-rank mean loss under average_gradients
// (nn/parallel/gradient_sync.h), which divides it out again.
#pragma once
#include "nn/parallel/communicator.h"
#include "engine/tensor.h"

namespace advcl::dist {

// x: [n_r, ...] (float32/float64, any device; n_r may differ between
// ranks, the trailing shape may not). Returns [sum of n_r, ...], ranks'
// rows in rank order, identical on every rank. A collective, also in backward.
Tensor all_gather_rows(const Tensor& x, Communicator& comm = world());

}  // namespace advcl::dist
