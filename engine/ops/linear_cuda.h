// CUDA entry points of the matrix products (implemented in linear.cu through
// cuBLAS). Same row-major contract as engine/blas.h.
#pragma once
#include <cstdint>

namespace advcl::cuda_ops {

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

// Autocast's product (engine/autocast.h): C = op(A) op(B) with A and B
// rounded to bf16 (nearest even, as on the CPU) and float32 compute and C
// (cublasGemmEx, CUBLAS_COMPUTE_32F): C is written in float32, not rounded.
// M, N, K > 0.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, float* C, int64_t ldc);

}  // namespace advcl::cuda_ops
