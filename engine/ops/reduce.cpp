#include "engine/ops/reduce.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/reduce_cuda.h"
#include "engine/ops/shape.h"
#include "engine/parallel.h"

namespace advcl::ops {

using kernels::ReduceShape;

namespace {

int64_t wrap_dim(const char* op, const Tensor& x, int64_t dim) {
  int64_t d = dim < 0 ? dim + x.dim() : dim;
  if (d < 0 || d >= x.dim()) fail(op, ": dimension ", dim, " out of range for shape ", shape_str(x.shape()));
  return d;
}

ReduceShape reduce_shape(const Tensor& x, int64_t d) {
  ReduceShape s{1, x.shape()[d], 1};
  for (int64_t i = 0; i < d; ++i) s.outer *= x.shape()[i];
  for (int64_t i = d + 1; i < x.dim(); ++i) s.inner *= x.shape()[i];
  return s;
}

Shape reduced_shape(const Tensor& x, int64_t d, bool keepdim) {
  Shape out = x.shape();
  if (keepdim)
    out[d] = 1;
  else
    out.erase(out.begin() + d);
  return out;
}

// out = scale * sum along d; backward spreads scale * g back over d.
Tensor scaled_sum(const char* op, const Tensor& x, int64_t dim, bool keepdim, bool mean) {
  int64_t d = wrap_dim(op, x, dim);
  ReduceShape s = reduce_shape(x, d);
  if (mean && s.n == 0) fail(op, ": mean over an empty dimension of shape ", shape_str(x.shape()));
  double scale = mean ? 1.0 / static_cast<double>(s.n) : 1.0;
  Tensor y = Tensor::empty(reduced_shape(x, d, keepdim), x.dtype(), x.device());
  visit_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    if (on_cuda(op, x.device()))
      ADVCL_CUDA_ONLY(cuda_ops::sum_along(xp, yp, s, scale));
    else
      parallel_for(s.outer * s.inner, [&](int64_t o) {
        yp[o] = static_cast<T>(static_cast<double>(kernels::sum_along(xp, s, o)) * scale);
      }, 256);
  });
  if (needs_graph({x})) {
    record(y, op, {x}, [s, scale, op, xshape = x.shape()](const Tensor& g, const Needs&) {
      Tensor gx = Tensor::empty(xshape, g.dtype(), g.device());
      visit_float(g.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* gp = g.data<T>();
        T* out = gx.data<T>();
        if (on_cuda(op, g.device()))
          ADVCL_CUDA_ONLY(cuda_ops::expand_along(gp, out, s, scale));
        else
          parallel_for(s.outer * s.n * s.inner, [&](int64_t i) {
            int64_t o = i / (s.n * s.inner), in = i % s.inner;
            out[i] = static_cast<T>(static_cast<double>(gp[o * s.inner + in]) * scale);
          });
      });
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

// Values and int64 indices of the extreme along d (sign 1: max, -1: min).
std::pair<Tensor, Tensor> extreme(const char* op, const Tensor& x, int64_t d, bool keepdim, int sign) {
  ReduceShape s = reduce_shape(x, d);
  if (s.n == 0) fail(op, ": reduction over an empty dimension of shape ", shape_str(x.shape()));
  Shape out_shape = reduced_shape(x, d, keepdim);
  Tensor vals = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor idx = Tensor::empty(out_shape, DType::Int64, x.device());
  visit_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* vp = vals.data<T>();
    int64_t* ip = idx.data<int64_t>();
    if (on_cuda(op, x.device()))
      ADVCL_CUDA_ONLY(cuda_ops::arg_extreme_along(xp, ip, vp, s, sign));
    else
      parallel_for(s.outer * s.inner, [&](int64_t o) {
        ip[o] = kernels::arg_extreme_along(xp, s, o, sign);
        vp[o] = xp[s.base(o) + ip[o] * s.inner];
      }, 256);
  });
  return {vals, idx};
}

Tensor extreme_values(const char* op, const Tensor& x, int64_t dim, bool keepdim, int sign) {
  int64_t d = wrap_dim(op, x, dim);
  auto [vals, idx] = extreme(op, x, d, keepdim, sign);
  if (needs_graph({x})) {
    ReduceShape s = reduce_shape(x, d);
    record(vals, op, {x}, [s, op, idx, xshape = x.shape()](const Tensor& g, const Needs&) {
      Tensor gx = Tensor::zeros(xshape, g.dtype(), g.device());
      visit_float(g.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T* gp = g.data<T>();
        const int64_t* ip = idx.data<int64_t>();
        T* out = gx.data<T>();
        if (on_cuda(op, g.device()))
          ADVCL_CUDA_ONLY(cuda_ops::scatter_along(gp, ip, out, s));
        else
          parallel_for(s.outer * s.inner, [&](int64_t o) { out[s.base(o) + ip[o] * s.inner] = gp[o]; });
      });
      return std::vector<Tensor>{gx};
    });
  }
  return vals;
}

}  // namespace

Tensor sum(const Tensor& x, int64_t dim, bool keepdim) { return scaled_sum("sum", x, dim, keepdim, false); }
Tensor mean(const Tensor& x, int64_t dim, bool keepdim) { return scaled_sum("mean", x, dim, keepdim, true); }
Tensor max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_values("max", x, dim, keepdim, 1); }
Tensor min(const Tensor& x, int64_t dim, bool keepdim) { return extreme_values("min", x, dim, keepdim, -1); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  Tensor idx = extreme("argmax", x, wrap_dim("argmax", x, dim), keepdim, 1).second;
  record_nondifferentiable(idx, "argmax", {x});
  return idx;
}

Tensor sum(const Tensor& x) { return ops::sum(reshape(x, {x.numel()}), 0); }
Tensor mean(const Tensor& x) { return ops::mean(reshape(x, {x.numel()}), 0); }

TopK topk(const Tensor& x, int64_t k) {
  if (x.dim() < 1) fail("topk: needs at least a 1-D input, got a scalar");
  int64_t n = x.size(-1);
  if (k < 1 || k > n) fail("topk: k = ", k, " out of range for last dimension ", n, " of shape ", shape_str(x.shape()));
  int64_t rows = x.numel() / n;
  Shape out_shape = x.shape();
  out_shape.back() = k;
  TopK r{Tensor::empty(out_shape, x.dtype(), x.device()), Tensor::empty(out_shape, DType::Int64, x.device())};
  visit_float(x.dtype(), "topk", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* vp = r.values.data<T>();
    int64_t* ip = r.indices.data<int64_t>();
    if (on_cuda("topk", x.device()))
      ADVCL_CUDA_ONLY(cuda_ops::topk_rows(xp, vp, ip, rows, n, k));
    else
      parallel_for(rows, [&](int64_t i) { kernels::topk_row(xp + i * n, n, k, vp + i * k, ip + i * k); }, 64);
  });
  if (needs_graph({x})) {
    record(r.values, "topk", {x}, [rows, n, k, idx = r.indices, xshape = x.shape()](const Tensor& g, const Needs&) {
      Tensor gx = Tensor::zeros(xshape, g.dtype(), g.device());
      visit_float(g.dtype(), "topk", [&](auto tag) {
        using T = decltype(tag);
        const T* gp = g.data<T>();
        const int64_t* ip = idx.data<int64_t>();
        T* out = gx.data<T>();
        if (on_cuda("topk", g.device()))
          ADVCL_CUDA_ONLY(cuda_ops::topk_backward(gp, ip, out, rows, n, k));
        else
          parallel_for(rows, [&](int64_t i) {
            for (int64_t j = 0; j < k; ++j) out[i * n + ip[i * k + j]] += gp[i * k + j];
          }, 64);
      });
      return std::vector<Tensor>{gx};
    });
  }
  return r;
}

Tensor global_avg_pool(const Tensor& x, bool channels_last) {
  check_dim("global_avg_pool", x, 4);
  if (channels_last) return mean(reshape(x, {x.size(0), x.size(1) * x.size(2), x.size(3)}), 1);
  return mean(reshape(x, {x.size(0), x.size(1), x.size(2) * x.size(3)}), 2);
}

Tensor l2_normalize(const Tensor& x, double eps) {
  check_dim("l2_normalize", x, 2);
  int64_t rows = x.size(0), d = x.size(1);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  visit_float(x.dtype(), "l2_normalize", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    if (on_cuda("l2_normalize", x.device()))
      ADVCL_CUDA_ONLY(cuda_ops::l2_normalize_rows(xp, yp, rows, d, eps));
    else
      parallel_for(rows, [&](int64_t r) { kernels::l2_normalize_row(xp, yp, d, r, eps); }, 64);
  });
  if (needs_graph({x})) {
    record(y, "l2_normalize", {x}, [rows, d, eps, xs = x.detach()](const Tensor& g, const Needs&) {
      Tensor gx = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
      visit_float(xs.dtype(), "l2_normalize", [&](auto tag) {
        using T = decltype(tag);
        const T *xp = xs.data<T>(), *gp = g.data<T>();
        T* out = gx.data<T>();
        if (on_cuda("l2_normalize", xs.device()))
          ADVCL_CUDA_ONLY(cuda_ops::l2_normalize_backward(xp, gp, out, rows, d, eps));
        else
          parallel_for(rows, [&](int64_t r) { kernels::l2_normalize_backward_row(xp, gp, out, d, r, eps); }, 64);
      });
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace advcl::ops
