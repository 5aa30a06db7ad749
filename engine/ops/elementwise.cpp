#include "engine/ops/elementwise.h"

#include <algorithm>
#include <type_traits>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/kernels/elementwise.h"
#include "engine/ops/elementwise_cuda.h"
#include "engine/ops/reduce.h"
#include "engine/parallel.h"

namespace advcl::ops {

using kernels::BroadcastIndex;

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, ": shapes ", shape_str(a), " and ", shape_str(b), " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  if (static_cast<int>(n) > kernels::kMaxDims) fail(op, ": more than ", kernels::kMaxDims, " dimensions");
  return out;
}

namespace {

// Row-major strides of `in` viewed inside `out` (right-aligned), 0 where broadcast.
void fill_strides(const Shape& in, const Shape& out, int64_t* strides) {
  size_t lead = out.size() - in.size();
  int64_t s = 1;
  for (size_t i = out.size(); i-- > 0;) {
    int64_t d = i < lead ? 1 : in[i - lead];
    strides[i] = d == 1 ? 0 : s;
    s *= d;
  }
}

BroadcastIndex make_index(const Shape& out, const Shape& a, const Shape& b) {
  BroadcastIndex idx;
  idx.ndim = static_cast<int>(out.size());
  for (size_t i = 0; i < out.size(); ++i) idx.sizes[i] = out[i];
  fill_strides(a, out, idx.a_strides);
  fill_strides(b, out, idx.b_strides);
  return idx;
}

// When b's shape is a's trailing dimensions (leading 1s allowed) and a is
// the output shape, the number of elements of b; else 0.
int64_t trailing_broadcast(const Shape& a, const Shape& b) {
  size_t first = 0;
  while (first < b.size() && b[first] == 1) ++first;
  size_t len = b.size() - first;
  if (len == 0 || len >= a.size() || !std::equal(b.begin() + first, b.end(), a.end() - len)) return 0;
  int64_t inner = 1;
  for (size_t i = first; i < b.size(); ++i) inner *= b[i];
  return inner;
}

// op's input gradient from its input x, output y and the output gradient g.
template <class Op>
Tensor unary_grad(const char* name, const Op& op, const Tensor& x, const Tensor& y, const Tensor& g) {
  Tensor gx = Tensor::empty(x.shape(), x.dtype(), x.device());
  int64_t n = x.numel();
  visit_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T *xp = x.data<T>(), *yp = y.data<T>(), *gp = g.data<T>();
    T* out = gx.data<T>();
    if (on_cuda(name, x.device()))
      ADVCL_CUDA_ONLY(cuda_ops::unary_backward(op, xp, yp, gp, out, n));
    else
      parallel_for(n, [&](int64_t i) { out[i] = op.bwd(xp[i], yp[i], gp[i]); });
  });
  return gx;
}

template <class Op>
Tensor unary(const char* name, const Tensor& x, Op op) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  int64_t n = x.numel();
  visit_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    if (on_cuda(name, x.device()))
      ADVCL_CUDA_ONLY(cuda_ops::unary_forward(op, xp, yp, n));
    else
      parallel_for(n, [&](int64_t i) { yp[i] = op.fwd(xp[i]); });
  });
  if (needs_graph({x})) {
    record(y, name, {x}, [op, name, xs = x.detach(), ys = y.detach()](const Tensor& g, const Needs&) {
      return std::vector<Tensor>{unary_grad(name, op, xs, ys, g)};
    });
  }
  return y;
}

// d(op)/d(a or b) per output element, then summed down to that input's shape.
template <class Op>
Tensor binary_grad(const char* name, const Op& op, const Tensor& a, const Tensor& b, const Tensor& g, int which) {
  const Shape& target = which == 0 ? a.shape() : b.shape();
  BroadcastIndex idx = make_index(g.shape(), a.shape(), b.shape());
  Tensor full = Tensor::empty(g.shape(), g.dtype(), g.device());
  int64_t n = g.numel();
  visit_float(g.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T *ap = a.data<T>(), *bp = b.data<T>(), *gp = g.data<T>();
    T* out = full.data<T>();
    if (on_cuda(name, g.device())) {
      ADVCL_CUDA_ONLY(cuda_ops::binary_backward(op, idx, ap, bp, gp, out, which, n));
    } else {
      parallel_for(n, [&](int64_t i) {
        int64_t oa, ob;
        idx.offsets(i, oa, ob);
        out[i] = which == 0 ? op.da(ap[oa], bp[ob], gp[i]) : op.db(ap[oa], bp[ob], gp[i]);
      });
    }
  });
  return sum_to(full, target);
}

template <class Op>
Tensor binary(const char* name, const Tensor& a, const Tensor& b, Op op) {
  check_same_kind(name, a, b);
  Shape out_shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor y = Tensor::empty(out_shape, a.dtype(), a.device());
  int64_t n = y.numel();
  BroadcastIndex idx = make_index(out_shape, a.shape(), b.shape());
  visit_float(a.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T *ap = a.data<T>(), *bp = b.data<T>();
    T* yp = y.data<T>();
    if (on_cuda(name, a.device())) {
      ADVCL_CUDA_ONLY(cuda_ops::binary_forward(op, idx, ap, bp, yp, n));
    } else if (a.shape() == b.shape()) {
      parallel_for(n, [&](int64_t i) { yp[i] = op.fwd(ap[i], bp[i]); });
    } else if (int64_t inner = trailing_broadcast(a.shape(), b.shape())) {
      // b repeats along a's leading dimensions (a bias row): rows of a, no index arithmetic.
      parallel_for(n / inner, [&](int64_t r) {
        for (int64_t c = 0; c < inner; ++c) yp[r * inner + c] = op.fwd(ap[r * inner + c], bp[c]);
      }, 16);
    } else {
      parallel_for(n, [&](int64_t i) {
        int64_t oa, ob;
        idx.offsets(i, oa, ob);
        yp[i] = op.fwd(ap[oa], bp[ob]);
      });
    }
  });
  if (needs_graph({a, b})) {
    record(y, name, {a, b}, [op, name, as = a.detach(), bs = b.detach()](const Tensor& g, const Needs& needs) {
      std::vector<Tensor> r(2);
      // The gradient of a sum is the output's gradient itself where no
      // broadcast is summed away: passed on without a copy (gradients are
      // never written in place, so one tensor may serve both inputs).
      constexpr bool identity = std::is_same_v<Op, kernels::Add>;
      if (needs[0]) r[0] = identity && as.shape() == g.shape() ? g : binary_grad(name, op, as, bs, g, 0);
      if (needs[1]) r[1] = identity && bs.shape() == g.shape() ? g : binary_grad(name, op, as, bs, g, 1);
      return r;
    });
  }
  return y;
}

}  // namespace

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  Shape check = broadcast_shapes("sum_to", shape, x.shape());
  if (check != x.shape()) fail("sum_to: cannot sum shape ", shape_str(x.shape()), " down to ", shape_str(shape));
  // The common case, a bias gradient ([N, C] -> [C]): summing away leading
  // dimensions is a column sum, done by the parallel reduction.
  Shape trailing(shape.begin() + static_cast<std::ptrdiff_t>(std::find_if(shape.begin(), shape.end(),
                                                                          [](int64_t d) { return d != 1; }) -
                                                             shape.begin()),
                 shape.end());
  if (!trailing.empty() && trailing.size() < x.shape().size() &&
      std::equal(trailing.rbegin(), trailing.rend(), x.shape().rbegin())) {
    int64_t inner = 1;
    for (int64_t d : trailing) inner *= d;
    return sum(x.view({x.numel() / inner, inner}), 0).view(shape);
  }
  BroadcastIndex idx = make_index(x.shape(), shape, x.shape());
  Tensor out = Tensor::zeros(shape, x.dtype(), x.device());
  int64_t n = x.numel();
  visit_float(x.dtype(), "sum_to", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    if (on_cuda("sum_to", x.device())) {
      ADVCL_CUDA_ONLY(cuda_ops::sum_to(idx, xp, op, n, out.numel()));
    } else {
      for (int64_t i = 0; i < n; ++i) {
        int64_t oa, ob;
        idx.offsets(i, oa, ob);
        op[oa] += xp[i];
      }
    }
  });
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary("add", a, b, kernels::Add{}); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary("sub", a, b, kernels::Sub{}); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary("mul", a, b, kernels::Mul{}); }
Tensor div(const Tensor& a, const Tensor& b) { return binary("div", a, b, kernels::Div{}); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary("minimum", a, b, kernels::Minimum{}); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary("maximum", a, b, kernels::Maximum{}); }

Tensor add(const Tensor& x, double s) { return unary("add_scalar", x, kernels::AddScalar{s}); }
Tensor mul(const Tensor& x, double s) { return unary("mul_scalar", x, kernels::MulScalar{s}); }
Tensor div(const Tensor& x, double s) { return unary("div_scalar", x, kernels::DivScalar{s}); }
Tensor rsub(const Tensor& x, double s) { return unary("rsub_scalar", x, kernels::RSubScalar{s}); }
Tensor pow(const Tensor& x, double p) { return unary("pow", x, kernels::PowScalar{p}); }

Tensor relu_backward(const Tensor& y, const Tensor& g) {
  if (y.shape() != g.shape())
    fail("relu_backward: output ", shape_str(y.shape()), " and gradient ", shape_str(g.shape()), " differ");
  return unary_grad("relu backward", kernels::Relu{}, y, y, g);  // Relu's bwd reads only the output
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    fail("add_relu: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()), " differ (no broadcasting)");
  Tensor y;
  {
    NoGradGuard forward_only;  // one node for the pair, recorded below
    y = binary("add_relu", a, b, kernels::AddRelu{});
  }
  if (needs_graph({a, b}))
    record(y, "add_relu", {a, b}, [ys = y.detach()](const Tensor& g, const Needs&) {
      Tensor gx = relu_backward(ys, g);
      return std::vector<Tensor>{gx, gx};
    });
  return y;
}

Tensor neg(const Tensor& x) { return unary("neg", x, kernels::Neg{}); }
Tensor exp(const Tensor& x) { return unary("exp", x, kernels::Exp{}); }
Tensor log(const Tensor& x) { return unary("log", x, kernels::Log{}); }
Tensor sqrt(const Tensor& x) { return unary("sqrt", x, kernels::Sqrt{}); }
Tensor abs(const Tensor& x) { return unary("abs", x, kernels::Abs{}); }
Tensor sign(const Tensor& x) { return unary("sign", x, kernels::Sign{}); }
Tensor relu(const Tensor& x) { return unary("relu", x, kernels::Relu{}); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  if (lo > hi) fail("clamp: lower bound ", lo, " is above upper bound ", hi);
  return unary("clamp", x, kernels::Clamp{lo, hi});
}

}  // namespace advcl::ops
