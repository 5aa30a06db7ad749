#include "engine/ops/layout.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/counters.h"
#include "engine/dispatch.h"
#include "engine/ops/layout_cuda.h"
#include "engine/parallel.h"

namespace advcl::ops {

namespace {

// out [N, B, A] = in [N, A, B] transposed per n. The CPU walks 32x32 tiles
// so that both the reads and the writes stay within a few cache lines.
Tensor transposed(const Tensor& x, const kernels::BatchedTranspose& t, const Shape& out_shape) {
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  visit_float(x.dtype(), "channels_last", [&](auto tag) {
    using T = decltype(tag);
    const T* in = x.data<T>();
    T* out = y.data<T>();
    if (on_cuda("channels_last", x.device())) {
      ADVCL_CUDA_ONLY(cuda_ops::batched_transpose(in, out, t));
      return;
    }
    constexpr int64_t kTile = 32;
    int64_t tiles_a = (t.A + kTile - 1) / kTile, tiles_b = (t.B + kTile - 1) / kTile;
    parallel_for(t.N * tiles_a * tiles_b, [&](int64_t job) {
      int64_t n = job / (tiles_a * tiles_b), ta = job / tiles_b % tiles_a, tb = job % tiles_b;
      const T* src = in + n * t.A * t.B;
      T* dst = out + n * t.A * t.B;
      for (int64_t b = tb * kTile; b < std::min(t.B, (tb + 1) * kTile); ++b)
        for (int64_t a = ta * kTile; a < std::min(t.A, (ta + 1) * kTile); ++a) dst[b * t.A + a] = src[a * t.B + b];
    }, 4);
  });
  return y;
}

}  // namespace

Tensor to_channels_last(const Tensor& x) {
  check_dim("to_channels_last", x, 4, "input [N, C, H, W]");
  counters::bump("layout.to_channels_last");
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = transposed(x, {N, C, H * W}, {N, H, W, C});
  if (needs_graph({x}))
    record(y, "to_channels_last", {x},
           [](const Tensor& g, const Needs&) { return std::vector<Tensor>{to_channels_first(g)}; });
  return y;
}

Tensor to_channels_first(const Tensor& x) {
  check_dim("to_channels_first", x, 4, "input [N, H, W, C]");
  counters::bump("layout.to_channels_first");
  int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  Tensor y = transposed(x, {N, H * W, C}, {N, C, H, W});
  if (needs_graph({x}))
    record(y, "to_channels_first", {x},
           [](const Tensor& g, const Needs&) { return std::vector<Tensor>{to_channels_last(g)}; });
  return y;
}

}  // namespace advcl::ops
