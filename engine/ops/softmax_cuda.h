// CUDA entry points of engine/ops/softmax.cpp (implemented in softmax.cu):
// a warp per row (one thread per element for KL), running the shared
// functions of kernels/softmax.h.
#pragma once
#include <cstdint>

namespace advcl::cuda_ops {

// kind: 0 softmax, 1 log_softmax
template <class T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t C, int kind);
template <class T>
void softmax_backward_rows(const T* y, const T* g, T* gx, int64_t rows, int64_t C, int kind);
// per-row losses into `loss` [rows] (double accumulation happens on the host side of the caller)
template <class T>
void cross_entropy_rows(const T* x, const int64_t* labels, T* loss, int64_t rows, int64_t C, int64_t ignore_index);
// gx[r] = (softmax - onehot) * g_scale
template <class T>
void cross_entropy_backward_rows(const T* x, const int64_t* labels, T* gx, int64_t rows, int64_t C,
                                 int64_t ignore_index, double g_scale);
// elementwise KL terms, and its gradients times g_scale (either pointer may be null)
template <class T>
void kl_terms(const T* input, const T* target, T* out, int64_t n);
template <class T>
void kl_backward(const T* input, const T* target, T* g_input, T* g_target, int64_t n, double g_scale);

}  // namespace advcl::cuda_ops
