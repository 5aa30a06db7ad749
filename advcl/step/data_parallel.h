// The loader side of data parallelism under mpirun (docs/distributed.md),
// shared by every stage: how a global batch is split over the ranks, and
// where a rank's share sits in its global batch.
//
// Training stages split each global batch (their --batch-size) over the
// ranks and take the same step on every rank. Evaluation and encoding visit
// every image exactly once; the ranks' counts or rows are combined
// afterwards (EvalCounts summed, features gathered into dataset order).
#pragma once
#include <cstdint>

#include "datasets/batch_loader.h"
#include "nn/parallel/communicator.h"

namespace advcl::cli {

// Training: `lo.batch_size` is the global batch; each rank takes
// batch / ranks images (the batch must be divisible by the number of ranks;
// the error names `option`), with the loader's rank/world sharding. When the
// epoch's last global batch of an `n`-image dataset has fewer images than
// there are ranks, it is dropped (a rank would have none). Unchanged for one rank.
data::LoaderOptions shard_training_loader(data::LoaderOptions lo, int64_t n, const char* option,
                                          dist::Communicator& comm = dist::world());

// Evaluation and encoding: in order, nothing dropped, `lo.batch_size` the
// global batch (each rank takes ceil(batch / ranks) of it). A rank's batch
// may be empty at the end of the data; callers skip empty batches.
// Unchanged for one rank.
data::LoaderOptions shard_eval_loader(data::LoaderOptions lo, dist::Communicator& comm = dist::world());

// Where batch `b` (from `loader`) begins inside its global batch: 0 on one
// rank, rank * B / N for equal shards, the rank's even share of a short last
// batch. Keying per-image noise by this offset (RngKey::sample) gives every
// image the noise one process with the whole batch would draw.
int64_t global_batch_offset(const data::BatchLoader& loader, const data::Batch& b);

}  // namespace advcl::cli
