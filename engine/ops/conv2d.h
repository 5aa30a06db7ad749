// 2-D convolution (cross-correlation, as PyTorch's conv2d), NCHW.
//   x: [N, Cin, H, W], weight: [Cout, Cin, kH, kW], bias: [Cout] or undefined.
//   out: [N, Cout, (H + 2p - kH)/s + 1, (W + 2p - kW)/s + 1]
// With Conv2dOptions::channels_last, x is [N, H, W, Cin] and out
// [N, OH, OW, Cout] (engine/ops/layout.h); the weight stays [Cout, Cin, kH, kW].
// oneDNN runs that layout natively; the other paths (float64, the BLAS path,
// the GPU) transpose to NCHW and back around their NCHW convolution.
// CPU: float32 through oneDNN (engine/onednn_conv.h); float64, or float32
// when asked, through im2col + GEMM with the BLAS, in chunks of images. Backward computes
// only what is asked: backward-data for x, backward-weight (counted as
// "conv2d.backward_weight") for the weight, a sum for the bias.
// Under autocast (engine/autocast.h) float32 convolutions compute in bf16 with
// float32 sums and results, through oneDNN; the backward of a conv2d made
// under autocast runs in bf16 too (each bf16 pass counted as "conv2d.bf16").
// The bias gradient is a float32 sum always.
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

struct Conv2dOptions {
  int stride = 1;
  int padding = 0;
  bool channels_last = false;  // activations [N, H, W, C] instead of [N, C, H, W]
};

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Conv2dOptions opt = {});

// The three computations behind conv2d, also used by tests and benchmarks.
Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dOptions opt);
Tensor conv2d_backward_data(const Tensor& grad_out, const Tensor& weight, const Shape& x_shape, Conv2dOptions opt);
Tensor conv2d_backward_weight(const Tensor& grad_out, const Tensor& x, const Shape& w_shape, Conv2dOptions opt);

// Which CPU implementation float32 convolutions use (float64 always uses
// Im2colBlas). Tests switch it to compare the two; the default is OneDnn.
enum class CpuPath { OneDnn, Im2colBlas };
CpuPath cpu_path();
void set_cpu_path(CpuPath p);

// Whether a convolution of x would run on oneDNN (float32 on the CPU, by
// cpu_path() or under bf16 autocast), the one path that reads channels-last
// activations without transposing them: where a network should keep them.
bool conv2d_runs_on_onednn(const Tensor& x);

}  // namespace advcl::ops
