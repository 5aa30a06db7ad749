// CUDA entry points of the elementwise ops (engine/ops/elementwise.cu):
// launches of the same functors the CPU loops call. Explicitly instantiated
// there for float and double and every functor of kernels/elementwise.h.
#pragma once
#include <cstdint>

#include "engine/kernels/broadcast.h"

namespace advcl::cuda_ops {

template <class Op, class T>
void unary_forward(const Op& op, const T* x, T* y, int64_t n);
template <class Op, class T>
void unary_backward(const Op& op, const T* x, const T* y, const T* g, T* gx, int64_t n);
template <class Op, class T>
void binary_forward(const Op& op, const kernels::BroadcastIndex& idx, const T* a, const T* b, T* y, int64_t n);
// which = 0: d/da, 1: d/db, written per output element (summed to shape by the caller).
template <class Op, class T>
void binary_backward(const Op& op, const kernels::BroadcastIndex& idx, const T* a, const T* b, const T* g, T* out,
                     int which, int64_t n);
template <class T>
void sum_to(const kernels::BroadcastIndex& idx, const T* x, T* out, int64_t n_in, int64_t n_out);

}  // namespace advcl::cuda_ops
