// CUDA entry points of engine/ops/shape.cpp (implemented in shape.cu).
#pragma once
#include <cstdint>

namespace advcl::cuda_ops {

// dst[r, :] = src[idx[r], :] for r < n_out; rows of row_elems elements. idx is on the device.
template <class T>
void gather_rows(const T* src, const int64_t* idx, T* dst, int64_t n_out, int64_t row_elems);
// dst[idx[r], :] += src[r, :] (dst zeroed by the caller).
template <class T>
void scatter_add_rows(const T* src, const int64_t* idx, T* dst, int64_t n_src, int64_t row_elems);

}  // namespace advcl::cuda_ops
