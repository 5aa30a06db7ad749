// 2-D convolution (cross-correlation, as PyTorch's conv2d), NCHW.
//   x: [N, Cin, H, W], weight: [Cout, Cin, kH, kW], bias: [Cout] or undefined.
//   out: [N, Cout, (H + 2p - kH)/s + 1, (W + 2p - kW)/s + 1]
// CPU: im2col + GEMM through the BLAS, in chunks of images. Backward computes
// only what is asked: backward-data for x, backward-weight (counted as
// "conv2d.backward_weight") for the weight, a sum for the bias.
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

struct Conv2dOptions {
  int stride = 1;
  int padding = 0;
};

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Conv2dOptions opt = {});

// The three computations behind conv2d, also used by tests and benchmarks.
Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dOptions opt);
Tensor conv2d_backward_data(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape, Conv2dOptions opt);
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& w_shape, Conv2dOptions opt);

}  // namespace advcl::ops
