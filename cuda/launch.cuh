// The GPU side of "kernel math is written once" (engine/parallel.h is the
// CPU side): launch(op, n, f) calls f(i) for every i in [0, n) on the
// current stream, with a grid-stride loop so that any n fits one launch.
//
// `f` is a functor with a __device__ (usually ADVCL_HD) operator()(int64_t),
// copied by value into the kernel's parameters: it must hold only plain data
// and device pointers. (Device lambdas would need nvcc's --extended-lambda.)
#pragma once
#include <cstdint>

#include "cuda/check.cuh"
#include "cuda/runtime.h"

namespace advcl::cuda {

inline cudaStream_t stream() { return reinterpret_cast<cudaStream_t>(current_stream()); }

template <class F>
__global__ void grid_stride_kernel(int64_t n, F f) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) f(i);
}

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU several times over; beyond that the
// grid-stride loop covers the rest with less launch overhead.
constexpr int64_t kMaxBlocks = 65536;

inline unsigned blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

// `op` names the advcl op for error messages.
template <class F>
void launch(const char* op, int64_t n, const F& f) {
  if (n <= 0) return;
  grid_stride_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, f);
  ADVCL_CUDA_CHECK_LAUNCH(op, "grid_stride_kernel");
}

}  // namespace advcl::cuda
