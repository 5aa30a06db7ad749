#include "engine/ops/fft_highpass.h"

#include <cmath>
#include <complex>

#include "cuda/pinned_upload.h"
#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/kernels/fft_highpass.h"
#include "engine/ops/fft_highpass_cuda.h"
#include "engine/parallel.h"

namespace advcl::ops {

namespace {

using cd = std::complex<double>;

// The frequencies the mask removes, grouped by row: rows[r] = u, cols[r] = the v's.
struct LowBand {
  std::vector<int64_t> rows;
  std::vector<std::vector<int64_t>> cols;
};

LowBand low_band(int64_t H, int64_t W, double radius) {
  LowBand band;
  for (int64_t i = 0; i < H; ++i) {
    std::vector<int64_t> vs;
    for (int64_t j = 0; j < W; ++j)
      if (!kernels::highpass_keeps(i, j, H, W, radius)) vs.push_back(((j - W / 2) % W + W) % W);
    if (!vs.empty()) {
      band.rows.push_back(((i - H / 2) % H + H) % H);
      band.cols.push_back(vs);
    }
  }
  return band;
}

// y = x - lowpass(x) for one H x W plane, exactly (double precision DFT
// restricted to the zeroed frequencies):
//   A[u, b]  = sum_a x[a, b] e^{-2 pi i u a / H}            (rows u of the band)
//   X[u, v]  = sum_b A[u, b] e^{-2 pi i v b / W}            ((u, v) zeroed)
//   B[u, q]  = sum_v X[u, v] e^{+2 pi i v q / W}
//   low[p,q] = Re sum_u B[u, q] e^{+2 pi i u p / H} / (H W)
template <class T>
void highpass_plane(const T* x, T* y, int64_t H, int64_t W, const LowBand& band, const std::vector<cd>& eh,
                    const std::vector<cd>& ew) {
  size_t U = band.rows.size();
  std::vector<cd> A(U * W), B(U * W, cd(0, 0));
  for (size_t r = 0; r < U; ++r) {
    int64_t u = band.rows[r];
    for (int64_t b = 0; b < W; ++b) {
      cd acc(0, 0);
      for (int64_t a = 0; a < H; ++a) acc += static_cast<double>(x[a * W + b]) * std::conj(eh[(u * a) % H]);
      A[r * W + b] = acc;
    }
    for (int64_t v : band.cols[r]) {
      cd X(0, 0);
      for (int64_t b = 0; b < W; ++b) X += A[r * W + b] * std::conj(ew[(v * b) % W]);
      for (int64_t q = 0; q < W; ++q) B[r * W + q] += X * ew[(v * q) % W];
    }
  }
  double norm = 1.0 / static_cast<double>(H * W);
  for (int64_t p = 0; p < H; ++p)
    for (int64_t q = 0; q < W; ++q) {
      double low = 0;
      for (size_t r = 0; r < U; ++r) low += (B[r * W + q] * eh[(band.rows[r] * p) % H]).real();
      y[p * W + q] = static_cast<T>(static_cast<double>(x[p * W + q]) - low * norm);
    }
}

Tensor apply_highpass(const Tensor& x, double radius) {
  int64_t H = x.size(2), W = x.size(3), planes = x.size(0) * x.size(1);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  visit_float(x.dtype(), "fft_highpass", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    if (on_cuda("fft_highpass", x.device())) {
      // An upload the host does not wait for (a plain copy would stall every step).
      Tensor mask = highpass_mask(H, W, radius);
      Tensor keep = Tensor::empty(mask.shape(), DType::UInt8, x.device());
      cuda::upload_async(keep.raw_data(), mask.raw_data(), mask.nbytes());
      ADVCL_CUDA_ONLY(cuda_ops::fft_highpass(xp, yp, planes, H, W, keep.data<uint8_t>()));
      return;
    }
    LowBand band = low_band(H, W, radius);
    std::vector<cd> eh(H), ew(W);
    for (int64_t k = 0; k < H; ++k) eh[k] = std::polar(1.0, 2 * M_PI * static_cast<double>(k) / static_cast<double>(H));
    for (int64_t k = 0; k < W; ++k) ew[k] = std::polar(1.0, 2 * M_PI * static_cast<double>(k) / static_cast<double>(W));
    parallel_for(planes, [&](int64_t i) { highpass_plane(xp + i * H * W, yp + i * H * W, H, W, band, eh, ew); }, 2);
  });
  return y;
}

}  // namespace

Tensor highpass_mask(int64_t h, int64_t w, double radius) {
  Tensor m = Tensor::empty({h, w}, DType::UInt8);
  uint8_t* p = m.data<uint8_t>();
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) p[i * w + j] = kernels::highpass_keeps(i, j, h, w, radius) ? 1 : 0;
  return m;
}

Tensor fft_highpass(const Tensor& x, double radius) {
  check_dim("fft_highpass", x, 4, "input [N, C, H, W]");
  if (!(radius >= 0)) fail("fft_highpass: radius must be >= 0, got ", radius);
  Tensor y = apply_highpass(x, radius);
  // The map is real, linear and symmetric (its kernel is a sum of cosines,
  // which are even), so its adjoint is itself.
  if (needs_graph({x}))
    record(y, "fft_highpass", {x}, [radius](const Tensor& g, const Needs&) {
      return std::vector<Tensor>{apply_highpass(g, radius)};
    });
  return y;
}

}  // namespace advcl::ops
