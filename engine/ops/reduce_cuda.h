// CUDA entry points of engine/ops/reduce.cpp (implemented in reduce.cu), one
// thread per output element calling the shared functions of kernels/reduce.h.
#pragma once
#include <cstdint>

#include "engine/kernels/reduce.h"

namespace advcl::cuda_ops {

template <class T>
void sum_along(const T* x, T* out, const kernels::ReduceShape& s, double scale);  // out = scale * sum
template <class T>
void arg_extreme_along(const T* x, int64_t* idx, T* val, const kernels::ReduceShape& s, int sign);  // val may be null
// gx[o, k, i] = scale * g[o, i] (backward of sum/mean)
template <class T>
void expand_along(const T* g, T* gx, const kernels::ReduceShape& s, double scale);
// gx = 0 except gx[o, idx[o,i], i] = g[o, i] (backward of max/min)
template <class T>
void scatter_along(const T* g, const int64_t* idx, T* gx, const kernels::ReduceShape& s);
template <class T>
void topk_rows(const T* x, T* vals, int64_t* idx, int64_t rows, int64_t n, int64_t k);
// gx[r, idx[r, j]] += g[r, j], gx zeroed first
template <class T>
void topk_backward(const T* g, const int64_t* idx, T* gx, int64_t rows, int64_t n, int64_t k);
template <class T>
void l2_normalize_rows(const T* x, T* y, int64_t rows, int64_t d, double eps);
template <class T>
void l2_normalize_backward(const T* x, const T* g, T* gx, int64_t rows, int64_t d, double eps);

}  // namespace advcl::cuda_ops
