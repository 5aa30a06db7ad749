// Per-element math of the elementwise ops, forward and derivative side by
// side. Each functor is called by the CPU loop and by the CUDA grid alike.
//
// Binary functors: fwd(a, b); da(a, b, g) and db(a, b, g) give the gradient
// contributions for a and b. Unary functors: fwd(x); bwd(x, y, g) where y is
// fwd(x) and g the output gradient.
#pragma once
#include <cmath>

#include "engine/common.h"

namespace advcl::kernels {

struct Add {
  template <class T> ADVCL_HD T fwd(T a, T b) const { return a + b; }
  template <class T> ADVCL_HD T da(T, T, T g) const { return g; }
  template <class T> ADVCL_HD T db(T, T, T g) const { return g; }
};
struct Sub {
  template <class T> ADVCL_HD T fwd(T a, T b) const { return a - b; }
  template <class T> ADVCL_HD T da(T, T, T g) const { return g; }
  template <class T> ADVCL_HD T db(T, T, T g) const { return -g; }
};
struct Mul {
  template <class T> ADVCL_HD T fwd(T a, T b) const { return a * b; }
  template <class T> ADVCL_HD T da(T, T b, T g) const { return g * b; }
  template <class T> ADVCL_HD T db(T a, T, T g) const { return g * a; }
};
struct Div {
  template <class T> ADVCL_HD T fwd(T a, T b) const { return a / b; }
  template <class T> ADVCL_HD T da(T, T b, T g) const { return g / b; }
  template <class T> ADVCL_HD T db(T a, T b, T g) const { return -g * a / (b * b); }
};
// Elementwise minimum/maximum; on ties the gradient is split in half, as PyTorch does.
struct Minimum {
  template <class T> ADVCL_HD T fwd(T a, T b) const { return a < b ? a : b; }
  template <class T> ADVCL_HD T da(T a, T b, T g) const { return a < b ? g : (a == b ? g / 2 : T(0)); }
  template <class T> ADVCL_HD T db(T a, T b, T g) const { return b < a ? g : (a == b ? g / 2 : T(0)); }
};
struct Maximum {
  template <class T> ADVCL_HD T fwd(T a, T b) const { return a > b ? a : b; }
  template <class T> ADVCL_HD T da(T a, T b, T g) const { return a > b ? g : (a == b ? g / 2 : T(0)); }
  template <class T> ADVCL_HD T db(T a, T b, T g) const { return b > a ? g : (a == b ? g / 2 : T(0)); }
};

// relu(a + b) in one pass (a residual block's sum); its gradient passes
// where the output is positive.
struct AddRelu {
  template <class T> ADVCL_HD T fwd(T a, T b) const { return a + b > 0 ? a + b : T(0); }
  template <class T> ADVCL_HD T da(T a, T b, T g) const { return a + b > 0 ? g : T(0); }
  template <class T> ADVCL_HD T db(T a, T b, T g) const { return a + b > 0 ? g : T(0); }
};

struct Neg {
  template <class T> ADVCL_HD T fwd(T x) const { return -x; }
  template <class T> ADVCL_HD T bwd(T, T, T g) const { return -g; }
};
struct Exp {
  template <class T> ADVCL_HD T fwd(T x) const { return std::exp(x); }
  template <class T> ADVCL_HD T bwd(T, T y, T g) const { return g * y; }
};
struct Log {
  template <class T> ADVCL_HD T fwd(T x) const { return std::log(x); }
  template <class T> ADVCL_HD T bwd(T x, T, T g) const { return g / x; }
};
struct Sqrt {
  template <class T> ADVCL_HD T fwd(T x) const { return std::sqrt(x); }
  template <class T> ADVCL_HD T bwd(T, T y, T g) const { return g / (2 * y); }
};
struct Abs {
  template <class T> ADVCL_HD T fwd(T x) const { return x < 0 ? -x : x; }
  template <class T> ADVCL_HD T bwd(T x, T, T g) const { return x > 0 ? g : (x < 0 ? -g : T(0)); }
};
// sign has derivative zero almost everywhere (PyTorch's convention).
struct Sign {
  template <class T> ADVCL_HD T fwd(T x) const { return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0)); }
  template <class T> ADVCL_HD T bwd(T, T, T) const { return T(0); }
};
struct Relu {
  template <class T> ADVCL_HD T fwd(T x) const { return x > 0 ? x : T(0); }
  template <class T> ADVCL_HD T bwd(T, T y, T g) const { return y > 0 ? g : T(0); }
};
// clamp to [lo, hi]; the gradient passes where lo <= x <= hi (PyTorch's convention).
struct Clamp {
  double lo, hi;
  template <class T> ADVCL_HD T fwd(T x) const { return x < T(lo) ? T(lo) : (x > T(hi) ? T(hi) : x); }
  template <class T> ADVCL_HD T bwd(T x, T, T g) const { return (x >= T(lo) && x <= T(hi)) ? g : T(0); }
};
struct AddScalar {
  double s;
  template <class T> ADVCL_HD T fwd(T x) const { return x + T(s); }
  template <class T> ADVCL_HD T bwd(T, T, T g) const { return g; }
};
struct MulScalar {
  double s;
  template <class T> ADVCL_HD T fwd(T x) const { return x * T(s); }
  template <class T> ADVCL_HD T bwd(T, T, T g) const { return g * T(s); }
};
struct DivScalar {
  double s;
  template <class T> ADVCL_HD T fwd(T x) const { return x / T(s); }
  template <class T> ADVCL_HD T bwd(T, T, T g) const { return g / T(s); }
};
// s - x
struct RSubScalar {
  double s;
  template <class T> ADVCL_HD T fwd(T x) const { return T(s) - x; }
  template <class T> ADVCL_HD T bwd(T, T, T g) const { return -g; }
};
// x ^ p for a scalar exponent
struct PowScalar {
  double p;
  template <class T> ADVCL_HD T fwd(T x) const { return std::pow(x, T(p)); }
  template <class T> ADVCL_HD T bwd(T x, T, T g) const { return g * T(p) * std::pow(x, T(p - 1)); }
};

}  // namespace advcl::kernels
