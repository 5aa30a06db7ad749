// Elementwise ops: arithmetic with broadcasting, unary math, and their
// derivatives. Per-element math: engine/kernels/elementwise.h.
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

// Broadcasting as NumPy/PyTorch: shapes align at the right, a dimension of 1
// stretches. The gradient of a broadcast input is summed back to its shape.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);

Tensor add(const Tensor& x, double s);
Tensor mul(const Tensor& x, double s);
Tensor div(const Tensor& x, double s);
Tensor rsub(const Tensor& x, double s);  // s - x
Tensor pow(const Tensor& x, double p);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);  // derivative 0, as in PyTorch
Tensor relu(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);

// relu(a + b) for a and b of one shape, in one pass forward and one backward
// (the same gradient serves both inputs): a residual block's output.
Tensor add_relu(const Tensor& a, const Tensor& b);
// The gradient through a ReLU whose output is y: g where y > 0, else 0. Not
// recorded: the backward of the fused ops (add_relu, batch norm + ReLU).
Tensor relu_backward(const Tensor& y, const Tensor& g);

// The broadcast shape of a and b; throws naming `op` and both shapes if none.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Sums `x` over broadcast dimensions down to `shape` (no autograd; used by backward).
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace advcl::ops

namespace advcl {
inline Tensor operator+(const Tensor& a, const Tensor& b) { return ops::add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return ops::sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return ops::mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return ops::div(a, b); }
inline Tensor operator+(const Tensor& a, double s) { return ops::add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return ops::add(a, -s); }
inline Tensor operator*(const Tensor& a, double s) { return ops::mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return ops::div(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return ops::add(a, s); }
inline Tensor operator-(double s, const Tensor& a) { return ops::rsub(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return ops::mul(a, s); }
inline Tensor operator-(const Tensor& a) { return ops::neg(a); }
}  // namespace advcl
