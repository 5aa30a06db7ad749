// Activation layouts: channels-first (NCHW, the default and PyTorch's) and
// channels-last (NHWC), and the differentiable copies between them.
//
// A channels-last tensor is an ordinary contiguous tensor whose shape says
// so: [N, H, W, C]. No op guesses a layout from a shape: conv2d and batch
// norm take it as an option (Conv2dOptions::channels_last,
// BatchNormOptions::channels_last), the elementwise ops need none. Why it
// exists: oneDNN's convolutions read and write NHWC directly, so a network
// that keeps its activations channels-last from one layer to the next skips
// the reorders to and from the library's layout that every NCHW call pays
// (docs/engine.md, section 3).
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

// [N, C, H, W] -> [N, H, W, C] (a copy; counted as "layout.to_channels_last").
Tensor to_channels_last(const Tensor& x);
// [N, H, W, C] -> [N, C, H, W] (a copy; counted as "layout.to_channels_first").
Tensor to_channels_first(const Tensor& x);

}  // namespace advcl::ops
