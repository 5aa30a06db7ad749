#include "datasets/resized_crop.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/common.h"

namespace advcl::views {
namespace {

// The filter taps of every output sample along one axis, flat: output o
// reads input indices [first[o], first[o] + count[o]) of the box with
// weights weight[o * stride ...]. Flat arrays because this runs once per
// view on the loader threads, where per-tap allocations would dominate.
struct Taps {
  int64_t stride = 0;
  std::vector<int64_t> first, count;
  std::vector<float> weight;
};

// PyTorch's antialiased bilinear weights (aten UpSample.h,
// _compute_indices_min_size_weights_aa, with the triangle filter) for
// resizing n input samples to m.
Taps bilinear_aa_taps(int64_t n, int64_t m) {
  const double scale = static_cast<double>(n) / static_cast<double>(m);
  const double support = scale >= 1.0 ? scale : 1.0;  // triangle half-width: 1 input pixel, widened when shrinking
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  Taps t;
  t.stride = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<size_t>(m));
  t.count.resize(static_cast<size_t>(m));
  t.weight.assign(static_cast<size_t>(m * t.stride), 0.0f);
  std::vector<double> wd(static_cast<size_t>(t.stride));
  for (int64_t o = 0; o < m; ++o) {
    const double center = scale * (static_cast<double>(o) + 0.5);
    // Truncation toward zero, as the static_cast<int64_t> in PyTorch; values
    // below zero are clamped to 0 either way.
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), n);
    const int64_t cnt = std::min<int64_t>(hi - lo, t.stride);  // hi - lo <= 2 * support + 1 always
    double total = 0;
    for (int64_t k = 0; k < cnt; ++k) {
      const double x = std::abs((static_cast<double>(lo + k) - center + 0.5) * invscale);
      wd[static_cast<size_t>(k)] = x < 1.0 ? 1.0 - x : 0.0;
      total += wd[static_cast<size_t>(k)];
    }
    t.first[static_cast<size_t>(o)] = lo;
    t.count[static_cast<size_t>(o)] = cnt;
    float* w = t.weight.data() + o * t.stride;
    for (int64_t k = 0; k < cnt; ++k) w[k] = static_cast<float>(total != 0 ? wd[static_cast<size_t>(k)] / total : 0.0);
  }
  return t;
}

}  // namespace

void check_resized_crop_options(const ResizedCropOptions& opt) {
  if (!(opt.scale_min > 0 && opt.scale_min <= opt.scale_max))
    fail("RandomResizedCrop: need 0 < scale_min <= scale_max, got (", opt.scale_min, ", ", opt.scale_max, ")");
  if (!(opt.ratio_min > 0 && opt.ratio_min <= opt.ratio_max))
    fail("RandomResizedCrop: need 0 < ratio_min <= ratio_max, got (", opt.ratio_min, ", ", opt.ratio_max, ")");
}

CropBox sample_resized_crop(data::SampleRng& rng, int64_t h, int64_t w, const ResizedCropOptions& opt) {
  if (h < 1 || w < 1) fail("RandomResizedCrop: empty image ", h, "x", w);
  const double area = static_cast<double>(h) * static_cast<double>(w);
  const double log_lo = std::log(opt.ratio_min), log_hi = std::log(opt.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * (opt.scale_min + (opt.scale_max - opt.scale_min) * rng.uniform());
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * rng.uniform());
    // nearbyint rounds half to even in the default rounding mode, like Python's round().
    const auto cw = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));
    const auto ch = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      CropBox b;
      b.height = ch;
      b.width = cw;
      b.top = rng.below(static_cast<uint32_t>(h - ch + 1));
      b.left = rng.below(static_cast<uint32_t>(w - cw + 1));
      return b;
    }
  }
  // Fallback: the central crop, as wide as the ratio range allows.
  CropBox b;
  const double in_ratio = static_cast<double>(w) / static_cast<double>(h);
  if (in_ratio < opt.ratio_min) {
    b.width = w;
    b.height = static_cast<int64_t>(std::nearbyint(static_cast<double>(w) / opt.ratio_min));
  } else if (in_ratio > opt.ratio_max) {
    b.height = h;
    b.width = static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * opt.ratio_max));
  } else {
    b.width = w;
    b.height = h;
  }
  b.top = (h - b.height) / 2;
  b.left = (w - b.width) / 2;
  return b;
}

void resized_crop(const float* in, int64_t c, int64_t h, int64_t w, CropBox box, int64_t out_h, int64_t out_w,
                  float* out) {
  if (box.height < 1 || box.width < 1 || box.top < 0 || box.left < 0 || box.top + box.height > h ||
      box.left + box.width > w)
    fail("resized_crop: box (top ", box.top, ", left ", box.left, ", height ", box.height, ", width ", box.width,
         ") does not lie inside the ", h, "x", w, " image");
  if (out_h < 1 || out_w < 1) fail("resized_crop: output size must be positive, got ", out_h, "x", out_w);
  const Taps tx = bilinear_aa_taps(box.width, out_w), ty = bilinear_aa_taps(box.height, out_h);
  // Horizontal pass over the box's rows into tmp (c x box.height x out_w),
  // then the vertical pass; accumulation in float, as PyTorch does for float
  // images, each sum starting from 0 and adding the taps in order.
  std::vector<float> tmp(static_cast<size_t>(c * box.height * out_w));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < box.height; ++y) {
      const float* row = in + (k * h + box.top + y) * w + box.left;
      float* trow = tmp.data() + (k * box.height + y) * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        const float* src = row + tx.first[static_cast<size_t>(x)];
        const float* wt = tx.weight.data() + x * tx.stride;
        float acc = 0;
        for (int64_t i = 0; i < tx.count[static_cast<size_t>(x)]; ++i) acc += wt[i] * src[i];
        trow[x] = acc;
      }
    }
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < out_h; ++y) {
      float* orow = out + (k * out_h + y) * out_w;
      std::fill(orow, orow + out_w, 0.0f);
      const float* wt = ty.weight.data() + y * ty.stride;
      for (int64_t i = 0; i < ty.count[static_cast<size_t>(y)]; ++i) {
        const float* trow = tmp.data() + (k * box.height + ty.first[static_cast<size_t>(y)] + i) * out_w;
        for (int64_t x = 0; x < out_w; ++x) orow[x] += wt[i] * trow[x];
      }
    }
}

}  // namespace advcl::views
