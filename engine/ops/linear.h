// Matrix products: on the CPU through OpenBLAS run inside our OpenMP threads
// (engine/blas.h), float32 optionally through oneDNN (engine/onednn_matmul.h);
// cuBLAS on the GPU (engine/ops/gemm.h). Under autocast (engine/autocast.h)
// float32 products compute in bf16 with float32 sums (oneDNN on the CPU), and
// so does their backward.
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

// op(a) @ op(b) for 2-D a, b, where op transposes when asked.
// matmul(f, f, false, true) is f fᵀ (the similarity matrix of a batch).
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// x [N, in] @ weightᵀ [in, out] + bias [out] (bias may be undefined), as torch.nn.functional.linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// Which library float32 products on the CPU use: the BLAS (OpenBLAS sgemm,
// the default: its kernels were as fast or faster on the machines measured,
// see bench/README.md) or oneDNN's matmul primitive, the second
// implementation the tests compare with.
enum class MatmulCpuPath { OneDnn, Blas };
MatmulCpuPath matmul_cpu_path();
void set_matmul_cpu_path(MatmulCpuPath p);

}  // namespace advcl::ops
