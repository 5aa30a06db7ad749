// CUDA side of Tensor::to(DType): one grid-stride launch running
// kernels::convert_element, the function the CPU loop calls. The same launch
// rounds autocast's bf16 operands (to_bf16, from_bf16).
#include "cuda/launch.cuh"
#include "engine/kernels/convert.h"
#include "engine/ops/convert_cuda.h"

namespace advcl::cuda_ops {

namespace {

template <class D, class S>
struct ConvertElements {
  const S* src;
  D* dst;
  __device__ void operator()(int64_t i) const { dst[i] = kernels::convert_element<D>(src[i]); }
};

}  // namespace

void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n) {
  visit_dtype(dst_dtype, [&](auto d) {
    using D = decltype(d);
    visit_dtype(src_dtype, [&](auto s) {
      using S = decltype(s);
      cuda::launch("Tensor::to(dtype)", n, ConvertElements<D, S>{static_cast<const S*>(src), static_cast<D*>(dst)});
    });
  });
}

void to_bf16(const float* src, BFloat16* dst, int64_t n) {
  cuda::launch("bf16 autocast (float32 -> bf16)", n, ConvertElements<BFloat16, float>{src, dst});
}

void from_bf16(const BFloat16* src, float* dst, int64_t n) {
  cuda::launch("bf16 autocast (bf16 -> float32)", n, ConvertElements<float, BFloat16>{src, dst});
}

}  // namespace advcl::cuda_ops
