// CUDA side of the matrix product (engine/ops/linear_cuda.h) through cuBLAS.
// cuBLAS is column-major; a row-major matrix is the column-major transpose,
// so row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the
// same call with A and B (and M and N) swapped.
//
// bf16 (autocast): A and B are rounded into bf16 copies (scratch from the
// caching allocator, convert.cu's kernel) and cublasGemmEx multiplies them
// as CUDA_R_16BF with CUBLAS_COMPUTE_32F into the float32 C, so the product
// has float32 sums and a float32 result, as oneDNN's bf16 matmul on the CPU.
#include "cuda/device_buffer.cuh"
#include "cuda/handles.cuh"
#include "engine/ops/convert_cuda.h"
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

namespace {

// The bf16 copy of a row-major operand of `rows` rows with leading
// dimension ld (its last row holds only `cols` values, the rest is never read).
struct Bf16Operand {
  cuda::DeviceBuffer buf;
  Bf16Operand(const float* src, int64_t rows, int64_t cols, int64_t ld)
      : buf("matmul", sizeof(BFloat16) * static_cast<size_t>((rows - 1) * ld + cols)) {
    to_bf16(src, buf.as<BFloat16>(), (rows - 1) * ld + cols);
  }
};

}  // namespace

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0 || K <= 0) fail("gemm_bf16: empty product ", M, "x", N, "x", K, " (the caller handles these)");
  const Bf16Operand a(A, trans_a ? K : M, trans_a ? M : K, lda), b(B, trans_b ? N : K, trans_b ? K : N, ldb);
  cublasOperation_t opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const float one = 1, zero = 0;
  ADVCL_CUBLAS_CHECK("matmul", cublasGemmEx(cuda::cublas_handle(), opb, opa, to_int("N", N), to_int("M", M),
                                            to_int("K", K), &one, b.buf.get(), CUDA_R_16BF, to_int("ldb", ldb),
                                            a.buf.get(), CUDA_R_16BF, to_int("lda", lda), &zero, C, CUDA_R_32F,
                                            to_int("ldc", ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace advcl::cuda_ops
