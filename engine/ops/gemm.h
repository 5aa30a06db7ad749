// The device-dispatching GEMM that matmul and conv2d share: the BLAS on the
// CPU, cuBLAS on the GPU. Row-major, contract as engine/blas.h.
#pragma once
#include "engine/blas.h"
#include "engine/device.h"
#include "engine/dispatch.h"
#include "engine/ops/linear_cuda.h"

namespace advcl::ops {

template <class T>
void gemm(Device dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (dev.is_cuda())
    ADVCL_CUDA_ONLY(cuda_ops::gemm<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
  else
    blas::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace advcl::ops
