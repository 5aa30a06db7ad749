// Reductions over the threads of one block in a fixed tree order (warp
// shuffles, then the warps' results in one warp), so the result does not
// depend on thread timing (unlike atomicAdd): reruns give the same bits. For
// kernels launched with cuda::kThreads threads per block.
#pragma once
#include "cuda/launch.cuh"

namespace advcl::cuda {

constexpr int kWarp = 32;
static_assert(kThreads % kWarp == 0 && kThreads / kWarp <= kWarp, "block reductions assume whole warps, at most 32");

// Lane 0 gets op over the warp's 32 values (a fixed halving tree).
template <class T, class Op>
__device__ T warp_reduce(T v, Op op) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}

// Every thread of the block must call it; every thread gets the result.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T warps[kThreads / kWarp];
  const unsigned lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  v = warp_reduce(v, op);
  if (lane == 0) warps[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_reduce(lane < kThreads / kWarp ? warps[lane] : identity, op);
    if (lane == 0) warps[0] = v;
  }
  __syncthreads();
  T r = warps[0];
  __syncthreads();  // warps[] may be reused by the next call
  return r;
}

struct SumOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};

template <class T>
__device__ T block_sum(T v) { return block_reduce(v, SumOp{}, T(0)); }
template <class T>
__device__ T block_max(T v, T lowest) { return block_reduce(v, MaxOp{}, lowest); }

// Blocks for a one-block-per-item kernel that loops over items with stride gridDim.x.
inline unsigned blocks_per_item(int64_t items) {
  return static_cast<unsigned>(items < kMaxBlocks ? (items > 0 ? items : 1) : kMaxBlocks);
}

}  // namespace advcl::cuda
