// Matrix products through the BLAS (cuBLAS on the GPU).
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

// op(a) @ op(b) for 2-D a, b, where op transposes when asked.
// matmul(f, f, false, true) is f fᵀ (the similarity matrix of a batch).
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// x [N, in] @ weightᵀ [in, out] + bias [out] (bias may be undefined), as torch.nn.functional.linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace advcl::ops
