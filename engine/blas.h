// Row-major GEMM on the host through the BLAS (OpenBLAS):
//   C[M, N] = alpha * op(A) op(B) + beta * C
// with op(A) [M, K] (A stored [K, M] when trans_a), op(B) [K, N].
// lda/ldb/ldc are the row lengths of A, B, C as stored.
// OpenBLAS itself runs single-threaded; a large product is split over the
// OpenMP threads (one thread pool for the whole engine; see blas.cpp). Inside
// a parallel region it runs on the calling thread alone.
#pragma once
#include <cstdint>

namespace advcl::blas {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

}  // namespace advcl::blas
