// Builds without NCCL (CPU builds, or a CUDA toolkit without it): the
// gradient reducer then sums GPU buckets through MPI on the host.
#include "nn/parallel/nccl_all_reduce.h"

#if !ADVCL_NCCL
#include "nn/parallel/gradient_reducer.h"

namespace advcl::dist {

bool nccl_available() { return false; }

std::unique_ptr<BucketAllReduce> make_nccl_bucket_all_reduce(Communicator&, Device) {
  fail("dist: this build has no NCCL; rebuild with CUDA=1 on a machine whose CUDA toolkit has NCCL (libnccl)");
}

}  // namespace advcl::dist
#endif
