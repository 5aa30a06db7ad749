// Index arithmetic for broadcasting binary ops, usable on both devices.
#pragma once
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

constexpr int kMaxDims = 8;

// Maps a linear index of the output to the offsets of the two inputs, whose
// strides are 0 along broadcast dimensions.
struct BroadcastIndex {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t a_strides[kMaxDims] = {};
  int64_t b_strides[kMaxDims] = {};

  ADVCL_HD void offsets(int64_t i, int64_t& a, int64_t& b) const {
    a = 0;
    b = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t k = i % sizes[d];
      i /= sizes[d];
      a += k * a_strides[d];
      b += k * b_strides[d];
    }
  }
};

}  // namespace advcl::kernels
