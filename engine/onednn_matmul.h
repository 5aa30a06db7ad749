// float32 matrix products on the CPU through oneDNN's matmul primitive, on the
// same OpenMP threads as the rest of the engine. ops::gemm<float> sends CPU
// products here when ops::set_matmul_cpu_path(MatmulCpuPath::OneDnn) is
// chosen (the default is the BLAS, measured faster: bench/README.md); float64
// stays on the BLAS (oneDNN has no f64).
#pragma once
#include <cstdint>

namespace advcl::onednn {

// Row-major C[M, N] = op(A) op(B), with op(A) [M, K] (A stored [K, M] when
// trans_a) and op(B) [K, N] (B stored [N, K] when trans_b); lda/ldb/ldc are the
// row lengths as stored, as in engine/blas.h. M, N, K >= 1. One primitive
// per (shape, transposes, row lengths), cached; each one built bumps the
// counter "onednn.matmul.primitive". Safe to call from several threads at
// once; inside an OpenMP parallel region it runs on the calling thread alone.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc);

// The same product in mixed precision (engine/autocast.h): A and B rounded to
// bf16 (nearest even) in a copy, bf16 products summed in float32, C float32.
// Its primitives bump "onednn.matmul.primitive.bf16".
void sgemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                const float* B, int64_t ldb, float* C, int64_t ldc);

}  // namespace advcl::onednn
