// CUDA entry point of the matrix products (implemented in linear.cu through
// cuBLAS). Same row-major contract as engine/blas.h.
#pragma once
#include <cstdint>

namespace advcl::cuda_ops {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace advcl::cuda_ops
