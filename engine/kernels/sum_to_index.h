// Index math of the deterministic CUDA sum_to (engine/ops/elementwise.cu),
// in a plain header so the CPU tests check it too.
//
// sum_to sums x (shape `sizes`) down to a broadcastable shape. In the
// BroadcastIndex that elementwise.cpp builds, `sizes` is x's shape and
// `a_strides` the output's strides, 0 along the summed dimensions. Output
// element j and position r among the elements summed into it name input
// element in_offset(j, r); the r's of one j are visited in a fixed order, so
// no atomics (and no run-to-run variation) are needed.
#pragma once
#include <cstdint>

#include "engine/kernels/broadcast.h"

namespace advcl::kernels {

struct SumToIndex {
  kernels::BroadcastIndex idx;
  int64_t in_strides[kernels::kMaxDims] = {};  // row-major strides of x

  explicit SumToIndex(const kernels::BroadcastIndex& i) : idx(i) {
    int64_t s = 1;
    for (int d = idx.ndim - 1; d >= 0; --d) {
      in_strides[d] = s;
      s *= idx.sizes[d];
    }
  }

  ADVCL_HD int64_t in_offset(int64_t j, int64_t r) const {
    int64_t off = 0;
    for (int d = idx.ndim - 1; d >= 0; --d) {
      if (idx.sizes[d] == 1) continue;
      int64_t& k = idx.a_strides[d] != 0 ? j : r;  // a kept or a summed dimension
      off += (k % idx.sizes[d]) * in_strides[d];
      k /= idx.sizes[d];
    }
    return off;
  }
};

}  // namespace advcl::kernels
