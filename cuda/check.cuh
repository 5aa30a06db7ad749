// Error checking for CUDA runtime calls, for .cu files only. Every failure
// becomes an advcl::Error naming the advcl op, the CUDA call as written, and
// the error's name and description, e.g.
//   conv2d: cudaMalloc(&p, n) failed: cudaErrorMemoryAllocation (out of memory) [cuda/runtime.cu:42]
#pragma once
#include <cuda_runtime.h>

#include "cuda/base.h"

namespace advcl::cuda {

[[noreturn]] inline void throw_cuda_error(const char* op, const char* call, cudaError_t e, const char* file,
                                          int line) {
  // A kernel fault (illegal address, assert) poisons the whole context: say
  // so, since every later call fails with the same error.
  const char* sticky = (e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorAssert ||
                        e == cudaErrorIllegalInstruction || e == cudaErrorMisalignedAddress)
                           ? " (a kernel faulted; the CUDA context is unusable until the process restarts)"
                           : "";
  fail(op, ": ", call, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")", sticky, " [", file, ":",
       line, "]");
}

}  // namespace advcl::cuda

// ADVCL_CUDA_CHECK("add", cudaMemsetAsync(p, 0, n, s));
#define ADVCL_CUDA_CHECK(op, call)                                                        \
  do {                                                                                    \
    cudaError_t advcl_cuda_err_ = (call);                                                 \
    if (advcl_cuda_err_ != cudaSuccess)                                                   \
      ::advcl::cuda::throw_cuda_error((op), #call, advcl_cuda_err_, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: reports a bad configuration or a missing kernel
// image at once. (Faults inside the kernel surface at the next synchronising
// call.) `what` names the kernel.
#define ADVCL_CUDA_CHECK_LAUNCH(op, what)                                                              \
  do {                                                                                                 \
    cudaError_t advcl_cuda_err_ = cudaGetLastError();                                                  \
    if (advcl_cuda_err_ != cudaSuccess)                                                                \
      ::advcl::cuda::throw_cuda_error((op), "launch of " what, advcl_cuda_err_, __FILE__, __LINE__);  \
  } while (0)
