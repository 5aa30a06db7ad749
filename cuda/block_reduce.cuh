// A sum over the threads of one block in a fixed tree order, so the result
// does not depend on thread timing (unlike atomicAdd): reruns give the same
// bits. For kernels launched with cuda::kThreads threads per block.
#pragma once
#include "cuda/launch.cuh"

namespace advcl::cuda {

// Every thread of the block must call it; every thread gets the sum.
template <class T>
__device__ T block_sum(T v) {
  __shared__ T buf[kThreads];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (unsigned w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) buf[threadIdx.x] += buf[threadIdx.x + w];
    __syncthreads();
  }
  T r = buf[0];
  __syncthreads();  // buf may be reused by the next call
  return r;
}

// Blocks for a one-block-per-item kernel that loops over items with stride gridDim.x.
inline unsigned blocks_per_item(int64_t items) {
  return static_cast<unsigned>(items < kMaxBlocks ? (items > 0 ? items : 1) : kMaxBlocks);
}

}  // namespace advcl::cuda
