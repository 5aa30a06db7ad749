// CUDA side of the row gather/scatter of engine/ops/shape.cpp
// (engine/ops/shape_cuda.h).
#include "cuda/launch.cuh"
#include "engine/ops/shape_cuda.h"

namespace advcl::cuda_ops {

namespace {

template <class T>
struct GatherRows {
  const T* src;
  const int64_t* idx;
  T* dst;
  int64_t row;
  __device__ void operator()(int64_t i) const { dst[i] = src[idx[i / row] * row + i % row]; }
};

// One thread per column, walking the source rows in order: repeated indices
// add up without atomics, in the same order as the CPU loop, so the result
// is the CPU's bit for bit and does not vary between runs.
template <class T>
struct ScatterAddColumn {
  const T* src;
  const int64_t* idx;
  T* dst;
  int64_t n_src, row;
  __device__ void operator()(int64_t j) const {
    for (int64_t r = 0; r < n_src; ++r) dst[idx[r] * row + j] += src[r * row + j];
  }
};

}  // namespace

// Indices are range-checked on the host by the caller.
template <class T>
void gather_rows(const T* src, const int64_t* idx, T* dst, int64_t n_out, int64_t row_elems) {
  if (row_elems <= 0) return;
  cuda::launch("index_select", n_out * row_elems, GatherRows<T>{src, idx, dst, row_elems});
}

template <class T>
void scatter_add_rows(const T* src, const int64_t* idx, T* dst, int64_t n_src, int64_t row_elems) {
  cuda::launch("index_select backward", n_src > 0 ? row_elems : 0, ScatterAddColumn<T>{src, idx, dst, n_src, row_elems});
}

template void gather_rows<float>(const float*, const int64_t*, float*, int64_t, int64_t);
template void gather_rows<double>(const double*, const int64_t*, double*, int64_t, int64_t);
template void scatter_add_rows<float>(const float*, const int64_t*, float*, int64_t, int64_t);
template void scatter_add_rows<double>(const double*, const int64_t*, double*, int64_t, int64_t);

}  // namespace advcl::cuda_ops
