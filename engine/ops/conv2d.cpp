#include "engine/ops/conv2d.h"

#include <algorithm>
#include <atomic>
#include <memory>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/counters.h"
#include "engine/dispatch.h"
#include "engine/blas.h"
#include "engine/onednn_conv.h"
#include "engine/ops/conv2d_cuda.h"
#include "engine/ops/layout.h"
#include "engine/parallel.h"

namespace advcl::ops {

using kernels::ConvGeometry;

namespace {

// The logical (NCHW) dimensions of an input of either layout.
Shape nchw_dims(const Shape& x, Conv2dOptions opt) {
  return opt.channels_last ? Shape{x[0], x[3], x[1], x[2]} : x;
}

ConvGeometry geometry(const Shape& x_shape, const Shape& w, Conv2dOptions opt) {
  Shape x = nchw_dims(x_shape, opt);
  ConvGeometry g{};
  g.N = x[0], g.Cin = x[1], g.H = x[2], g.W = x[3];
  g.Cout = w[0], g.kH = w[2], g.kW = w[3];
  g.stride = opt.stride, g.pad = opt.padding;
  g.OH = (g.H + 2 * g.pad - g.kH) / g.stride + 1;
  g.OW = (g.W + 2 * g.pad - g.kW) / g.stride + 1;
  return g;
}

ConvGeometry checked_geometry(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dOptions opt) {
  check_dim("conv2d", x, 4, opt.channels_last ? "input [N, H, W, C]" : "input [N, C, H, W]");
  check_dim("conv2d", w, 4, "weight [Cout, Cin, kH, kW]");
  check_same_kind("conv2d", x, w);
  if (opt.stride < 1 || opt.padding < 0)
    fail("conv2d: stride must be >= 1 and padding >= 0, got stride ", opt.stride, ", padding ", opt.padding);
  const Shape dims = nchw_dims(x.shape(), opt);
  if (dims[1] != w.size(1))
    fail("conv2d: input ", shape_str(x.shape()), opt.channels_last ? " (channels last)" : "", " has ", dims[1],
         " channels but weight ", shape_str(w.shape()), " expects ", w.size(1));
  if (b.defined()) {
    check_same_kind("conv2d", x, b);
    if (b.shape() != Shape{w.size(0)})
      fail("conv2d: bias ", shape_str(b.shape()), " does not match weight ", shape_str(w.shape()));
  }
  ConvGeometry g = geometry(x.shape(), w.shape(), opt);
  if (g.H + 2 * opt.padding < w.size(2) || g.W + 2 * opt.padding < w.size(3))
    fail("conv2d: kernel ", shape_str(w.shape()), " is larger than the padded input ", shape_str(x.shape()));
  return g;
}

// Images per im2col chunk: as many as keep the column buffer near 64 MiB, so
// the GEMMs are large while memory stays bounded.
int64_t chunk_images(const ConvGeometry& g, size_t elem) {
  int64_t per_image = std::max<int64_t>(1, g.K() * g.P() * static_cast<int64_t>(elem));
  return std::clamp<int64_t>((int64_t{64} << 20) / per_image, 1, std::max<int64_t>(g.N, 1));
}

// Scratch memory for a chunk; uninitialised (every element is written before use).
template <class T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(n)]);
}

template <class T>
void im2col(const T* x, const ConvGeometry& g, int64_t n0, int64_t nb, T* col) {
  int64_t cols = nb * g.P();
  parallel_for(g.K(), [&](int64_t k) { kernels::im2col_row(x, g, n0, nb, k, col + k * cols); }, 2);
}

// [nb, Cout, P] (slice of an NCHW tensor) -> [Cout, nb*P] (GEMM layout).
template <class T>
void nchw_to_rows(const T* src, const ConvGeometry& g, int64_t nb, T* dst) {
  int64_t P = g.P();
  parallel_for(nb * g.Cout, [&](int64_t i) {
    int64_t co = i % g.Cout, n = i / g.Cout;
    std::copy(src + i * P, src + (i + 1) * P, dst + co * nb * P + n * P);
  }, 16);
}

template <class T>
void cpu_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  int64_t chunk = chunk_images(g, sizeof(T)), K = g.K(), P = g.P();
  auto col = scratch<T>(K * chunk * P), rows = scratch<T>(g.Cout * chunk * P);
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    int64_t nb = std::min(chunk, g.N - n0);
    im2col(x, g, n0, nb, col.get());
    blas::gemm(false, false, g.Cout, nb * P, K, T(1), w, K, col.get(), nb * P, T(0), rows.get(), nb * P);
    T* out = y + n0 * g.Cout * P;
    parallel_for(nb * g.Cout, [&](int64_t i) {
      int64_t co = i % g.Cout, n = i / g.Cout;
      const T* src = rows.get() + co * nb * P + n * P;
      T b = bias ? bias[co] : T(0);
      for (int64_t p = 0; p < P; ++p) out[i * P + p] = src[p] + b;
    }, 16);
  }
}

template <class T>
void cpu_backward_data(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
  int64_t chunk = chunk_images(g, sizeof(T)), K = g.K(), P = g.P();
  auto colg = scratch<T>(K * chunk * P), rows = scratch<T>(g.Cout * chunk * P);
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    int64_t nb = std::min(chunk, g.N - n0);
    nchw_to_rows(gy + n0 * g.Cout * P, g, nb, rows.get());
    // colg[K, nb*P] = Wᵀ[K, Cout] @ rows[Cout, nb*P]
    blas::gemm(true, false, K, nb * P, g.Cout, T(1), w, K, rows.get(), nb * P, T(0), colg.get(), nb * P);
    T* out = gx + n0 * g.Cin * g.H * g.W;
    parallel_for(nb * g.Cin, [&](int64_t i) {
      kernels::col2im_plane(colg.get(), g, nb, i / g.Cin, i % g.Cin, out + i * g.H * g.W);
    }, 2);
  }
}

template <class T>
void cpu_backward_weight(const ConvGeometry& g, const T* gy, const T* x, T* gw) {
  int64_t chunk = chunk_images(g, sizeof(T)), K = g.K(), P = g.P();
  auto col = scratch<T>(K * chunk * P), rows = scratch<T>(g.Cout * chunk * P);
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    int64_t nb = std::min(chunk, g.N - n0);
    im2col(x, g, n0, nb, col.get());
    nchw_to_rows(gy + n0 * g.Cout * P, g, nb, rows.get());
    // gw[Cout, K] (+)= rows[Cout, nb*P] @ colᵀ[nb*P, K]
    blas::gemm(false, true, g.Cout, K, nb * P, T(1), rows.get(), nb * P, col.get(), nb * P, T(n0 ? 1 : 0), gw, K);
  }
  if (g.N == 0) std::fill(gw, gw + g.Cout * K, T(0));
}

template <class T>
void cpu_backward_bias(const ConvGeometry& g, const T* gy, T* gb) {
  int64_t P = g.P();
  parallel_for(g.Cout, [&](int64_t co) {
    double acc = 0;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t p = 0; p < P; ++p) acc += static_cast<double>(gy[(n * g.Cout + co) * P + p]);
    gb[co] = static_cast<T>(acc);
  }, 8);
}

std::atomic<CpuPath> g_cpu_path{CpuPath::OneDnn};

// Whether a float32 convolution computes in bf16: the autocast policy
// (engine/autocast.h) says so for this thread. On the CPU bf16 runs on
// oneDNN alone, whatever cpu_path(); on the GPU on cuDNN's bf16
// configuration (conv2d_cuda.h). float64 never changes.
template <class T>
onednn::Inputs inputs_for() {
  if (!std::is_same_v<T, float> || !autocast::runs_bf16(autocast::Op::Conv2d)) return onednn::Inputs::F32;
  counters::bump("conv2d.bf16");
  return onednn::Inputs::Bf16;
}

// The NCHW twin of channels-last options, for the paths that transpose.
Conv2dOptions channels_first(Conv2dOptions opt) {
  opt.channels_last = false;
  return opt;
}

}  // namespace

CpuPath cpu_path() { return g_cpu_path.load(); }
void set_cpu_path(CpuPath p) { g_cpu_path.store(p); }

bool conv2d_runs_on_onednn(const Tensor& x) {
  return x.device().is_cpu() && x.dtype() == DType::Float32 &&
         (cpu_path() == CpuPath::OneDnn || autocast::runs_bf16(autocast::Op::Conv2d));
}

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dOptions opt) {
  ConvGeometry g = checked_geometry(x, w, b, opt);
  if (opt.channels_last && !conv2d_runs_on_onednn(x)) {
    NoGradGuard internal;
    return to_channels_last(conv2d_forward(to_channels_first(x), w, b, channels_first(opt)));
  }
  Tensor y = Tensor::empty(opt.channels_last ? Shape{g.N, g.OH, g.OW, g.Cout} : Shape{g.N, g.Cout, g.OH, g.OW},
                           x.dtype(), x.device());
  visit_float(x.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    const onednn::Inputs in = inputs_for<T>();
    if (on_cuda("conv2d", x.device()))
      ADVCL_CUDA_ONLY(
          cuda_ops::conv2d_forward(g, x.data<T>(), w.data<T>(), bp, y.data<T>(), in == onednn::Inputs::Bf16));
    else if constexpr (std::is_same_v<T, float>)
      conv2d_runs_on_onednn(x) ? onednn::conv2d_forward(g, x.data<T>(), w.data<T>(), bp, y.data<T>(), {in, opt.channels_last})
                        : cpu_forward(g, x.data<T>(), w.data<T>(), bp, y.data<T>());
    else
      cpu_forward(g, x.data<T>(), w.data<T>(), bp, y.data<T>());
  });
  return y;
}

Tensor conv2d_backward_data(const Tensor& gy, const Tensor& w, const Shape& x_shape, Conv2dOptions opt) {
  if (opt.channels_last && !conv2d_runs_on_onednn(gy)) {
    NoGradGuard internal;
    return to_channels_last(conv2d_backward_data(to_channels_first(gy), w, nchw_dims(x_shape, opt), channels_first(opt)));
  }
  counters::bump("conv2d.backward_data");
  ConvGeometry g = geometry(x_shape, w.shape(), opt);
  Tensor gx = Tensor::empty(x_shape, gy.dtype(), gy.device());
  visit_float(gy.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    const onednn::Inputs in = inputs_for<T>();
    if (on_cuda("conv2d", gy.device()))
      ADVCL_CUDA_ONLY(
          cuda_ops::conv2d_backward_data(g, gy.data<T>(), w.data<T>(), gx.data<T>(), in == onednn::Inputs::Bf16));
    else if constexpr (std::is_same_v<T, float>)
      conv2d_runs_on_onednn(gy)
          ? onednn::conv2d_backward_data(g, gy.data<T>(), w.data<T>(), gx.data<T>(), {in, opt.channels_last})
          : cpu_backward_data(g, gy.data<T>(), w.data<T>(), gx.data<T>());
    else
      cpu_backward_data(g, gy.data<T>(), w.data<T>(), gx.data<T>());
  });
  return gx;
}

Tensor conv2d_backward_weight(const Tensor& gy, const Tensor& x, const Shape& w_shape, Conv2dOptions opt) {
  if (opt.channels_last && !conv2d_runs_on_onednn(gy)) {
    NoGradGuard internal;
    return conv2d_backward_weight(to_channels_first(gy), to_channels_first(x), w_shape, channels_first(opt));
  }
  counters::bump("conv2d.backward_weight");
  ConvGeometry g = geometry(x.shape(), w_shape, opt);
  Tensor gw = Tensor::empty(w_shape, gy.dtype(), gy.device());
  visit_float(gy.dtype(), "conv2d", [&](auto tag) {
    using T = decltype(tag);
    const onednn::Inputs in = inputs_for<T>();
    if (on_cuda("conv2d", gy.device()))
      ADVCL_CUDA_ONLY(
          cuda_ops::conv2d_backward_weight(g, gy.data<T>(), x.data<T>(), gw.data<T>(), in == onednn::Inputs::Bf16));
    else if constexpr (std::is_same_v<T, float>)
      conv2d_runs_on_onednn(gy)
          ? onednn::conv2d_backward_weight(g, gy.data<T>(), x.data<T>(), gw.data<T>(), {in, opt.channels_last})
          : cpu_backward_weight(g, gy.data<T>(), x.data<T>(), gw.data<T>());
    else
      cpu_backward_weight(g, gy.data<T>(), x.data<T>(), gw.data<T>());
  });
  return gw;
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dOptions opt) {
  Tensor y = conv2d_forward(x, w, b, opt);
  if (needs_graph({x, w, b})) {
    // Each gradient is computed only when asked: PGD asks for x alone.
    record(y, "conv2d", {x, w, b},
           [opt, xs = x.detach(), ws = w.detach(), has_bias = b.defined(),
            bf16 = autocast::runs_bf16(autocast::Op::Conv2d)](const Tensor& gy, const Needs& needs) {
             // The backward passes run in the forward's precision, wherever backward() is called from.
             autocast::AutocastGuard same_precision(bf16);
             std::vector<Tensor> r(3);
             if (needs[0]) r[0] = conv2d_backward_data(gy, ws, xs.shape(), opt);
             if (needs[1]) r[1] = conv2d_backward_weight(gy, xs, ws.shape(), opt);
             if (has_bias && needs[2]) {
               ConvGeometry g = geometry(xs.shape(), ws.shape(), opt);
               // The bias sum reads NCHW; a channels-last gradient is transposed first.
               Tensor gy_nchw = opt.channels_last ? to_channels_first(gy) : gy;
               r[2] = Tensor::empty({g.Cout}, gy.dtype(), gy.device());
               visit_float(gy.dtype(), "conv2d", [&](auto tag) {
                 using T = decltype(tag);
                 if (on_cuda("conv2d", gy.device()))
                   ADVCL_CUDA_ONLY(cuda_ops::conv2d_backward_bias(g, gy_nchw.data<T>(), r[2].data<T>()));
                 else
                   cpu_backward_bias(g, gy_nchw.data<T>(), r[2].data<T>());
               });
             }
             return r;
           });
  }
  return y;
}

}  // namespace advcl::ops
