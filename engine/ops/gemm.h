// The device-dispatching GEMM of matmul: on the CPU the BLAS (float32
// optionally through oneDNN's matmul primitive, see set_matmul_cpu_path in
// linear.h), cuBLAS on the GPU. Row-major, contract as engine/blas.h.
// gemm_bf16 is autocast's float32 product (engine/autocast.h) on either device.
#pragma once
#include <type_traits>

#include "engine/blas.h"
#include "engine/device.h"
#include "engine/dispatch.h"
#include "engine/onednn_matmul.h"
#include "engine/ops/linear.h"
#include "engine/ops/linear_cuda.h"

namespace advcl::ops {

template <class T>
void gemm(Device dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (on_cuda("matmul", dev)) {
    ADVCL_CUDA_ONLY(cuda_ops::gemm<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (alpha == 1.0f && beta == 0.0f && M > 0 && N > 0 && K > 0 && matmul_cpu_path() == MatmulCpuPath::OneDnn) {
      onednn::sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
      return;
    }
  }
  blas::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// C = op(A) op(B) (alpha 1, beta 0; M, N, K > 0) with A and B rounded to bf16
// and float32 sums and result: oneDNN's bf16 matmul on the CPU, cublasGemmEx
// with bf16 operands and float32 compute on the GPU.
inline void gemm_bf16(Device dev, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float* C, int64_t ldc) {
  if (on_cuda("matmul", dev)) {
    ADVCL_CUDA_ONLY(cuda_ops::gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, C, ldc));
    return;
  }
  onednn::sgemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
}

}  // namespace advcl::ops
