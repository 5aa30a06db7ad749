// CUDA entry points of conv2d (implemented in conv2d.cu through cuDNN, with
// the algorithm choice cached per geometry and precision). Pointers are
// device memory.
//
// `bf16` (float32 tensors only): autocast's arithmetic (engine/autocast.h).
// The float32 operands are rounded to bf16 (nearest even, as on the CPU),
// cuDNN multiplies them with float32 sums, and the result comes back as
// float32. Unlike oneDNN on the CPU, which writes float32, cuDNN writes its
// output in bf16: the forward output and both gradients are rounded to bf16
// on the GPU before they are widened. The bias and its gradient stay float32.
#pragma once
#include "engine/kernels/conv.h"

namespace advcl::cuda_ops {

template <class T>
void conv2d_forward(const kernels::ConvGeometry& g, const T* x, const T* w, const T* bias /*nullable*/, T* y,
                    bool bf16 = false);
template <class T>
void conv2d_backward_data(const kernels::ConvGeometry& g, const T* gy, const T* w, T* gx, bool bf16 = false);
template <class T>
void conv2d_backward_weight(const kernels::ConvGeometry& g, const T* gy, const T* x, T* gw, bool bf16 = false);
// gb[co] = sum over n, p of gy[n, co, p]
template <class T>
void conv2d_backward_bias(const kernels::ConvGeometry& g, const T* gy, T* gb);

}  // namespace advcl::cuda_ops
