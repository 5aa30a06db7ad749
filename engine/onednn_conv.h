// float32 convolution on the CPU through oneDNN (Debian's libdnnl), the
// library PyTorch's CPU convolutions use too. conv2d.cpp sends float32 here
// and keeps its im2col + BLAS path for float64 (oneDNN has no f64), which also
// serves as the second implementation the tests compare against.
#pragma once
#include "engine/kernels/conv.h"

namespace advcl::onednn {

void conv2d_forward(const kernels::ConvGeometry& g, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_data(const kernels::ConvGeometry& g, const float* gy, const float* w, float* gx);
void conv2d_backward_weight(const kernels::ConvGeometry& g, const float* gy, const float* x, float* gw);

}  // namespace advcl::onednn
