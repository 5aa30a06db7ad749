// CUDA entry points of conv2d (implemented in conv2d.cu through cuDNN, with
// the algorithm choice cached per geometry). Pointers are device memory.
#pragma once
#include "engine/kernels/conv.h"

namespace advcl::cuda_ops {

template <class T>
void conv2d_forward(const kernels::ConvGeometry& g, const T* x, const T* w, const T* bias /*nullable*/, T* y);
template <class T>
void conv2d_backward_data(const kernels::ConvGeometry& g, const T* gy, const T* w, T* gx);
template <class T>
void conv2d_backward_weight(const kernels::ConvGeometry& g, const T* gy, const T* x, T* gw);
// gb[co] = sum over n, p of gy[n, co, p]
template <class T>
void conv2d_backward_bias(const kernels::ConvGeometry& g, const T* gy, T* gb);

}  // namespace advcl::cuda_ops
