// CUDA side of the multi-tensor SGD update: the table travels as a kernel
// argument (no upload, no allocation), each block updates chunks of it with
// the kernels/sgd.h function the CPU loop runs.
#include "cuda/block_reduce.cuh"
#include "engine/ops/sgd_update_cuda.h"

namespace advcl::cuda_ops {

namespace {

template <class T>
__global__ void sgd_kernel(const __grid_constant__ kernels::SgdTable<T> table, kernels::SgdHyper hyper) {
  const int64_t chunks = table.chunk_start[table.count];
  for (int64_t c = blockIdx.x; c < chunks; c += gridDim.x) kernels::sgd_chunk(table, c, threadIdx.x, blockDim.x, hyper);
}

}  // namespace

template <class T>
void sgd_update(const kernels::SgdTable<T>& table, const kernels::SgdHyper& hyper) {
  const int64_t chunks = table.count > 0 ? table.chunk_start[table.count] : 0;
  if (chunks <= 0) return;
  sgd_kernel<T><<<cuda::blocks_per_item(chunks), cuda::kThreads, 0, cuda::stream()>>>(table, hyper);
  ADVCL_CUDA_CHECK_LAUNCH("sgd", "sgd_kernel");
}

template void sgd_update<float>(const kernels::SgdTable<float>&, const kernels::SgdHyper&);
template void sgd_update<double>(const kernels::SgdTable<double>&, const kernels::SgdHyper&);

}  // namespace advcl::cuda_ops
