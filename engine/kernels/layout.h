// Index math of the copies between channels-first (NCHW) and channels-last
// (NHWC) activations, shared by the CPU loop and the CUDA kernel.
//
// Both directions are one batched transpose: N matrices of [A, B] become
// [B, A]. NCHW -> NHWC is A = C, B = H*W; NHWC -> NCHW is A = H*W, B = C.
#pragma once
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

struct BatchedTranspose {
  int64_t N, A, B;

  // Where output element i (of [N, B, A]) comes from in the input [N, A, B].
  ADVCL_HD int64_t source_of(int64_t i) const {
    int64_t n = i / (A * B), r = i % (A * B);
    return (n * A + r % A) * B + r / A;
  }
};

}  // namespace advcl::kernels
