// CUDA entry point of Tensor::to(DType) for device tensors
// (engine/ops/convert.cu): converts n elements on the current stream, so a
// GPU tensor changes dtype without a round trip through host memory.
#pragma once
#include <cstdint>

#include "engine/dtype.h"

namespace advcl::cuda_ops {

void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n);

}  // namespace advcl::cuda_ops
