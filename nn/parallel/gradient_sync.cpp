#include "nn/parallel/gradient_sync.h"

#include <limits>

#include "nn/parallel/gradient_reducer.h"

namespace advcl::dist {

void average_gradients(const nn::StateDict& params, Communicator& comm) {
  if (comm.size() == 1) return;
  // The bucketed reducer's packing, presence flags and layout check, with
  // every parameter in one float64 bucket sent after backward.
  GradientReducer(params, comm, make_mpi_bucket_all_reduce(comm), std::numeric_limits<int64_t>::max())
      .average_held_gradients();
}

double local_loss_scale(int64_t local_count, Communicator& comm) {
  if (local_count < 0) fail("local_loss_scale: negative sample count ", local_count);
  if (comm.size() == 1) return 1.0;
  int64_t global = local_count;
  comm.all_reduce(&global, 1, ReduceOp::Sum, "local_loss_scale");
  if (global == 0) fail("local_loss_scale: no rank holds a sample");
  return static_cast<double>(local_count) * comm.size() / static_cast<double>(global);
}

}  // namespace advcl::dist
