// Reductions along one dimension, and over everything.
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);
// Maximum / minimum along dim; the gradient goes to the first extreme element (as PyTorch's max(dim)).
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x, int64_t dim, bool keepdim = false);
// Index (int64) of the first maximum along dim. Not differentiable.
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

Tensor sum(const Tensor& x);   // all elements, 0-D result
Tensor mean(const Tensor& x);  // all elements, 0-D result

// The k largest values along the last dimension, sorted descending, and their
// int64 indices. Values are differentiable (gradient to the chosen elements).
struct TopK {
  Tensor values, indices;
};
TopK topk(const Tensor& x, int64_t k);

// Global average pooling [N, C, H, W] -> [N, C], or [N, H, W, C] -> [N, C]
// where channels_last (engine/ops/layout.h).
Tensor global_avg_pool(const Tensor& x, bool channels_last = false);

// x / max(||x||_2, eps) along dimension 1 of a 2-D input, as torch.nn.functional.normalize.
Tensor l2_normalize(const Tensor& x, double eps = 1e-12);

}  // namespace advcl::ops
