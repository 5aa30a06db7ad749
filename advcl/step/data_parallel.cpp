#include "advcl/step/data_parallel.h"

#include "datasets/epoch_order.h"
#include "engine/common.h"

namespace advcl::cli {

data::LoaderOptions shard_training_loader(data::LoaderOptions lo, int64_t n, const char* option,
                                          dist::Communicator& comm) {
  if (!comm.distributed()) return lo;
  const int64_t global = lo.batch_size;
  if (global % comm.size()) fail(option, " ", global, " must be divisible by the ", comm.size(), " ranks");
  lo.batch_size = global / comm.size();
  lo.rank = comm.rank();
  lo.world = comm.size();
  const int64_t last = n % global;
  lo.drop_last = lo.drop_last || (last != 0 && last < comm.size());
  return lo;
}

data::LoaderOptions shard_eval_loader(data::LoaderOptions lo, dist::Communicator& comm) {
  lo.shuffle = false;
  lo.drop_last = false;
  if (!comm.distributed()) return lo;
  lo.batch_size = (lo.batch_size + comm.size() - 1) / comm.size();
  lo.rank = comm.rank();
  lo.world = comm.size();
  return lo;
}

int64_t global_batch_offset(const data::BatchLoader& loader, const data::Batch& b) {
  const data::LoaderOptions& o = loader.options();
  if (o.world == 1) return 0;
  data::ShardOptions s{o.batch_size, o.rank, o.world, o.drop_last};
  int64_t begin = 0, end = 0;
  data::batch_range(loader.dataset().n, s, b.index, begin, end);
  return begin - b.index * o.batch_size * o.world;
}

}  // namespace advcl::cli
