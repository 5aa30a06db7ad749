// Ops that move data without arithmetic: reshape, concatenation and slicing
// along the batch (first) dimension, all differentiable.
#pragma once
#include <vector>

#include "engine/tensor.h"

namespace advcl::ops {

Tensor reshape(const Tensor& x, const Shape& shape);  // -1 allowed once
Tensor flatten(const Tensor& x);                     // [N, ...] -> [N, rest]
Tensor cat(const std::vector<Tensor>& xs);           // along dim 0
Tensor slice(const Tensor& x, int64_t start, int64_t end);  // rows [start, end) of dim 0 (a copy)
// Rows of x picked by int64 indices along dim 0 (a copy).
Tensor index_select(const Tensor& x, const Tensor& indices);

}  // namespace advcl::ops
