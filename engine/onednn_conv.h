// float32 convolution on the CPU through oneDNN (Debian's libdnnl), the
// library PyTorch's CPU convolutions use too. conv2d.cpp sends float32 here
// and keeps its im2col + BLAS path for float64 (oneDNN has no f64), which also
// serves as the second implementation the tests compare against.
//
// Inputs::Bf16 is mixed precision (engine/autocast.h): the operands (x, w,
// and the incoming gradient gy) are rounded to bf16 by the reorders into the
// primitive's layout (nearest even), products are bf16, sums and every result
// (y, gx, gw) float32. The caller's buffers are float32 either way. Needs a
// CPU with native bf16 to be fast (engine/cpu_features.h); oneDNN emulates it
// otherwise.
//
// Activations (x, y and their gradients) are NCHW, or NHWC where
// `channels_last` (engine/ops/layout.h): the primitives then read and write
// NHWC themselves, so only the weights (and, in bf16, the element type) are
// converted around a call.
#pragma once
#include "engine/kernels/conv.h"

namespace advcl::onednn {

enum class Inputs { F32, Bf16 };

struct ConvCall {
  Inputs in = Inputs::F32;
  bool channels_last = false;
};

void conv2d_forward(const kernels::ConvGeometry& g, const float* x, const float* w, const float* bias, float* y,
                    ConvCall call = {});
void conv2d_backward_data(const kernels::ConvGeometry& g, const float* gy, const float* w, float* gx,
                          ConvCall call = {});
void conv2d_backward_weight(const kernels::ConvGeometry& g, const float* gy, const float* x, float* gw,
                            ConvCall call = {});

}  // namespace advcl::onednn
