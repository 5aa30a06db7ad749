// CUDA entry point of Tensor::to(DType) for device tensors
// (engine/ops/convert.cu): converts n elements on the current stream, so a
// GPU tensor changes dtype without a round trip through host memory.
#pragma once
#include <cstdint>

#include "engine/dtype.h"

namespace advcl::cuda_ops {

void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n);

// The operands of autocast's bf16 ops on the GPU (engine/autocast.h): n
// float32 values rounded to bfloat16, to nearest with ties to even
// (kernels::convert_element<BFloat16>, bit for bit the CPU's
// autocast::to_bf16; NaN stays NaN, infinities stay infinite), and bf16
// results widened back to float32 (exact). Device pointers; the current stream.
void to_bf16(const float* src, BFloat16* dst, int64_t n);
void from_bf16(const BFloat16* src, float* dst, int64_t n);

}  // namespace advcl::cuda_ops
