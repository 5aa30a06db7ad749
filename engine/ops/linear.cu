// CUDA side of the matrix product (engine/ops/linear_cuda.h) through cuBLAS.
// cuBLAS is column-major; a row-major matrix is the column-major transpose,
// so row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the
// same call with A and B (and M and N) swapped.
#include "cuda/handles.cuh"
#include "engine/ops/linear_cuda.h"

namespace advcl::cuda_ops {

namespace {

int to_int(const char* what, int64_t v) {
  if (v < 0 || v > 2147483647) fail("gemm: ", what, " = ", v, " does not fit cuBLAS's 32-bit sizes");
  return static_cast<int>(v);
}

cublasStatus_t call_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                         float* C, int ldc) {
  return cublasSgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
cublasStatus_t call_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const double* alpha, const double* A, int lda, const double* B, int ldb, const double* beta,
                         double* C, int ldc) {
  return cublasDgemm(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cublasOperation_t opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (K == 0) {
    // C = beta * C. A and B are empty and never read, but cuBLAS still
    // checks their leading dimensions: give ones it accepts.
    lda = ldb = M > N ? M : N;
  }
  ADVCL_CUBLAS_CHECK("gemm", call_gemm(cuda::cublas_handle(), opb, opa, to_int("N", N), to_int("M", M),
                                       to_int("K", K), &alpha, B, to_int("ldb", ldb), A, to_int("lda", lda), &beta, C,
                                       to_int("ldc", ldc)));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace advcl::cuda_ops
