// CUDA entry point of engine/ops/layout.cpp (implemented in layout.cu).
#pragma once
#include "engine/kernels/layout.h"

namespace advcl::cuda_ops {

// out[n, b, a] = in[n, a, b]
template <class T>
void batched_transpose(const T* in, T* out, const kernels::BatchedTranspose& t);

}  // namespace advcl::cuda_ops
