#include "engine/ops/shape.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/shape_cuda.h"
#include "engine/parallel.h"

namespace advcl::ops {

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) fail("reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known) fail("reshape: cannot reshape ", shape_str(x.shape()), " to ", shape_str(shape));
    s[infer] = x.numel() / known;
  }
  if (known * (infer >= 0 ? s[infer] : 1) != x.numel())
    fail("reshape: cannot reshape ", shape_str(x.shape()), " (", x.numel(), " elements) to ", shape_str(shape));
  Tensor y = x.view(s);
  if (needs_graph({x}))
    record(y, "reshape", {x}, [xshape = x.shape()](const Tensor& g, const Needs&) {
      return std::vector<Tensor>{g.view(xshape)};
    });
  return y;
}

Tensor flatten(const Tensor& x) {
  if (x.dim() < 1) fail("flatten: needs at least a 1-D input");
  return reshape(x, {x.size(0), -1});
}

Tensor cat(const std::vector<Tensor>& xs) {
  if (xs.empty()) fail("cat: no tensors given");
  Shape out_shape = xs[0].shape();
  if (out_shape.empty()) fail("cat: cannot concatenate 0-D tensors");
  int64_t rows = 0;
  for (const Tensor& t : xs) {
    check_same_kind("cat", xs[0], t);
    Shape a = t.shape(), b = xs[0].shape();
    if (a.size() != b.size() || !std::equal(a.begin() + 1, a.end(), b.begin() + 1))
      fail("cat: shapes ", shape_str(b), " and ", shape_str(a), " differ beyond dimension 0");
    rows += t.size(0);
  }
  out_shape[0] = rows;
  Tensor y = Tensor::empty(out_shape, xs[0].dtype(), xs[0].device());
  size_t offset = 0;
  for (const Tensor& t : xs) {
    copy_bytes(static_cast<char*>(y.raw_data()) + offset, y.device(), t.raw_data(), t.device(), t.nbytes());
    offset += t.nbytes();
  }
  if (needs_graph(xs)) {
    std::vector<int64_t> sizes;
    for (const Tensor& t : xs) sizes.push_back(t.size(0));
    record(y, "cat", xs, [sizes](const Tensor& g, const Needs& needs) {
      std::vector<Tensor> r(sizes.size());
      int64_t start = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (needs[i]) r[i] = g.narrow0(start, sizes[i]).clone();
        start += sizes[i];
      }
      return r;
    });
  }
  return y;
}

Tensor slice(const Tensor& x, int64_t start, int64_t end) {
  if (x.dim() < 1) fail("slice: needs at least a 1-D input");
  if (start < 0 || end < start || end > x.size(0))
    fail("slice: rows [", start, ", ", end, ") out of range for shape ", shape_str(x.shape()));
  Tensor y = x.narrow0(start, end - start).clone();
  if (needs_graph({x}))
    record(y, "slice", {x}, [start, end, xshape = x.shape()](const Tensor& g, const Needs&) {
      Tensor gx = Tensor::zeros(xshape, g.dtype(), g.device());
      gx.narrow0(start, end - start).copy_(g);
      return std::vector<Tensor>{gx};
    });
  return y;
}

Tensor index_select(const Tensor& x, const Tensor& indices) {
  check_dtype("index_select", indices, DType::Int64);
  check_dim("index_select", indices, 1, "index tensor");
  if (x.dim() < 1) fail("index_select: needs at least a 1-D input");
  check_same_device("index_select", indices, x, "indices");
  int64_t n = indices.numel(), rows = x.size(0), row = rows ? x.numel() / rows : 0;
  // Validate on the host: a bad index must be an error, not a wild read.
  std::vector<int64_t> host = indices.to_vector<int64_t>();
  for (int64_t i : host)
    if (i < 0 || i >= rows) fail("index_select: index ", i, " out of range for ", rows, " rows");
  Shape out_shape = x.shape();
  out_shape[0] = n;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw_data());
    T* yp = static_cast<T*>(y.raw_data());
    if (on_cuda("index_select", x.device())) {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
        ADVCL_CUDA_ONLY(cuda_ops::gather_rows(xp, indices.data<int64_t>(), yp, n, row));
      else
        fail("index_select: dtype ", dtype_name(x.dtype()), " on cuda is not supported");
    } else {
      parallel_for(n, [&](int64_t r) {
        for (int64_t j = 0; j < row; ++j) yp[r * row + j] = xp[host[r] * row + j];
      }, 64);
    }
  });
  if (needs_graph({x}))
    record(y, "index_select", {x}, [indices, host, row, xshape = x.shape()](const Tensor& g, const Needs&) {
      Tensor gx = Tensor::zeros(xshape, g.dtype(), g.device());
      visit_float(g.dtype(), "index_select", [&](auto tag) {
        using T = decltype(tag);
        const T* gp = g.data<T>();
        T* out = gx.data<T>();
        int64_t n = static_cast<int64_t>(host.size());
        if (on_cuda("index_select", g.device()))
          ADVCL_CUDA_ONLY(cuda_ops::scatter_add_rows(gp, indices.data<int64_t>(), out, n, row));
        else  // serial: repeated indices add into the same row
          for (int64_t r = 0; r < n; ++r)
            for (int64_t j = 0; j < row; ++j) out[host[r] * row + j] += gp[r * row + j];
      });
      return std::vector<Tensor>{gx};
    });
  return y;
}

}  // namespace advcl::ops
