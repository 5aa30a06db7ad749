// Per-element dtype conversion, shared by Tensor::to(DType) on the CPU and
// its CUDA launch (engine/ops/convert.cu), so both devices convert alike.
#pragma once
#include <type_traits>

#include "engine/common.h"
#include "engine/dtype.h"

namespace advcl::kernels {

// static_cast, except that bfloat16 goes through float on either side (it
// converts only to and from float32).
template <class D, class S>
ADVCL_HD D convert_element(S v) {
  if constexpr (std::is_same_v<D, BFloat16>)
    return BFloat16(static_cast<float>(v));
  else if constexpr (std::is_same_v<S, BFloat16>)
    return static_cast<D>(static_cast<float>(v));
  else
    return static_cast<D>(v);
}

}  // namespace advcl::kernels
