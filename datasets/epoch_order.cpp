#include "datasets/epoch_order.h"

#include <numeric>

#include "engine/common.h"
#include "engine/rng.h"

namespace advcl::data {

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  if (n < 0 || n > int64_t{0xffffffff}) fail("epoch_order: dataset size ", n, " outside [0, 2^32)");
  if (epoch < 0 || epoch > int64_t{0xffffffff}) fail("epoch_order: epoch ", epoch, " outside [0, 2^32)");
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (!shuffle) return order;
  RngKey key{seed, static_cast<uint32_t>(RngPurpose::Shuffle), static_cast<uint32_t>(epoch), 0};
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = key.below(static_cast<uint64_t>(i), static_cast<uint32_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

void check_shard_options(const ShardOptions& o) {
  if (o.batch_size < 1) fail("--batch-size must be >= 1, got ", o.batch_size);
  if (o.world < 1) fail("world size must be >= 1, got ", o.world);
  if (o.rank < 0 || o.rank >= o.world) fail("rank ", o.rank, " outside [0, ", o.world, ")");
}

int64_t batches_per_epoch(int64_t n, const ShardOptions& o) {
  check_shard_options(o);
  int64_t g = o.batch_size * o.world;
  return o.drop_last ? n / g : (n + g - 1) / g;
}

void batch_range(int64_t n, const ShardOptions& o, int64_t b, int64_t& begin, int64_t& end) {
  int64_t g = o.batch_size * o.world;
  int64_t nb = batches_per_epoch(n, o);
  if (b < 0 || b >= nb) fail("batch_range: batch ", b, " outside [0, ", nb, ")");
  int64_t start = b * g;
  int64_t r = std::min(g, n - start);  // samples in this global batch
  if (r == g) {
    begin = start + o.rank * o.batch_size;
    end = begin + o.batch_size;
  } else {
    begin = start + o.rank * r / o.world;
    end = start + (o.rank + 1) * r / o.world;
  }
}

}  // namespace advcl::data
