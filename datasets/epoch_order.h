// Which samples go into which batch, on which rank, in which epoch.
//
// The epoch order is a permutation of 0..n-1 drawn by Fisher-Yates from the
// counter-based generator: key (seed, RngPurpose::Shuffle, step = epoch) and
// for i = n-1 down to 1, j = key.below(i, i + 1), swap(order[i], order[j]).
// It is a pure function of (n, seed, epoch): the same on any machine, for any
// number of ranks or workers.
//
// Sharding: with `world` ranks and a per-rank batch size B, global batch b is
// order[b*G, b*G + G) with G = B * world, and rank r takes the r-th slice of
// it, order[b*G + r*B, b*G + (r+1)*B). So the ranks' parts are disjoint and
// together they are the epoch. The last, short global batch (kept unless
// drop_last) of R < G samples is split as evenly as possible: rank r takes
// [floor(r*R/world), floor((r+1)*R/world)) of it; every rank then has the
// same number of batches (some possibly smaller by one, or empty when
// R < world), so collective steps stay in lock step.
#pragma once
#include <cstdint>
#include <vector>

namespace advcl::data {

struct ShardOptions {
  int64_t batch_size = 1;  // per rank
  int64_t rank = 0, world = 1;
  bool drop_last = false;
};

// The epoch's permutation (identity when shuffle is false).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);

// Batches every rank takes in one epoch of n samples.
int64_t batches_per_epoch(int64_t n, const ShardOptions& o);

// Positions [begin, end) in the epoch order of this rank's batch b.
void batch_range(int64_t n, const ShardOptions& o, int64_t b, int64_t& begin, int64_t& end);

// Throws with a message naming the option unless the options are usable.
void check_shard_options(const ShardOptions& o);

}  // namespace advcl::data
