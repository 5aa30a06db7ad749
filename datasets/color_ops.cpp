#include "datasets/color_ops.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/common.h"

namespace advcl::views {
namespace {

void check_channels(const char* op, int64_t c) {
  if (c != 1 && c != 3) fail(op, ": images must have 1 or 3 channels, got ", c);
}

void check_factor(const char* op, double factor) {
  if (!(factor >= 0) || !std::isfinite(factor)) fail(op, ": factor must be finite and >= 0, got ", factor);
}

float clamp01(float x) { return std::min(std::max(x, 0.0f), 1.0f); }

// std::fmod(x, 1.0f) with Python's sign convention (torch.remainder), fast
// for the |x| < 2 that occur here. Both branches are exact in float (x - 1 for
// x in [1, 2) is exact by Sterbenz's lemma) except x + 1 for negative x,
// which rounds exactly as fmod-then-add does; the result may round up to 1.0.
float mod1(float x) {
  if (x >= 0.0f && x < 1.0f) return x;
  if (x >= 1.0f && x < 2.0f) return x - 1.0f;
  if (x < 0.0f && x > -1.0f) return x + 1.0f;
  float m = std::fmod(x, 1.0f);
  return m < 0.0f ? m + 1.0f : m;
}

// torchvision's _blend: (ratio * a + (1 - ratio) * b).clamp(0, 1). The two
// weights are rounded to float separately, as PyTorch does with the Python
// scalars ratio and 1.0 - ratio.
struct Blend {
  float a, b;
  explicit Blend(double ratio) : a(static_cast<float>(ratio)), b(static_cast<float>(1.0 - ratio)) {}
  float operator()(float x, float y) const { return clamp01(a * x + b * y); }
};

}  // namespace

void hflip(float* img, int64_t c, int64_t h, int64_t w) {
  for (int64_t r = 0; r < c * h; ++r) std::reverse(img + r * w, img + (r + 1) * w);
}

void rgb_to_gray(const float* rgb, int64_t hw, Luma luma, float* gray) {
  const float *r = rgb, *g = rgb + hw, *b = rgb + 2 * hw;
  // The sum in torchvision's order: (wr*r + wg*g) + wb*b.
  for (int64_t p = 0; p < hw; ++p) gray[p] = luma.r * r[p] + luma.g * g[p] + luma.b * b[p];
}

void to_grayscale(float* img, int64_t c, int64_t hw, Luma luma) {
  check_channels("to_grayscale", c);
  if (c == 1) return;
  rgb_to_gray(img, hw, luma, img);  // plane 0 only read at p before being written at p
  std::copy(img, img + hw, img + hw);
  std::copy(img, img + hw, img + 2 * hw);
}

void adjust_brightness(float* img, int64_t c, int64_t hw, double factor) {
  check_channels("adjust_brightness", c);
  check_factor("adjust_brightness", factor);
  Blend blend(factor);
  for (int64_t i = 0; i < c * hw; ++i) img[i] = blend(img[i], 0.0f);
}

void adjust_contrast(float* img, int64_t c, int64_t hw, double factor, Luma luma) {
  check_channels("adjust_contrast", c);
  check_factor("adjust_contrast", factor);
  if (hw == 0) return;
  // The mean gray level; torchvision rounds each gray value to float before
  // averaging, and so do we (the sum itself runs in double).
  double sum = 0;
  const float *r = img, *g = img + hw, *b = img + 2 * hw;
  for (int64_t p = 0; p < hw; ++p) sum += c == 3 ? luma.r * r[p] + luma.g * g[p] + luma.b * b[p] : img[p];
  const float mean = static_cast<float>(sum / static_cast<double>(hw));
  Blend blend(factor);
  for (int64_t i = 0; i < c * hw; ++i) img[i] = blend(img[i], mean);
}

void adjust_saturation(float* img, int64_t c, int64_t hw, double factor, Luma luma) {
  check_channels("adjust_saturation", c);
  check_factor("adjust_saturation", factor);
  if (c == 1) return;  // a gray image has no saturation to change (PIL and torchvision agree)
  Blend blend(factor);
  float *r = img, *g = img + hw, *b = img + 2 * hw;
  for (int64_t p = 0; p < hw; ++p) {
    const float gray = luma.r * r[p] + luma.g * g[p] + luma.b * b[p];
    r[p] = blend(r[p], gray);
    g[p] = blend(g[p], gray);
    b[p] = blend(b[p], gray);
  }
}

void rgb_to_hsv(const float* rgb, int64_t hw, float* hsv) {
  for (int64_t p = 0; p < hw; ++p) {
    const float r = rgb[p], g = rgb[hw + p], b = rgb[2 * hw + p];
    const float maxc = std::max(std::max(r, g), b), minc = std::min(std::min(r, g), b);
    const bool eqc = maxc == minc;
    const float cr = maxc - minc;
    // A gray pixel (maxc == minc) gets s = 0 and h = 0: its divisors are
    // replaced by 1, which avoids 0/0 (torchvision does the same).
    const float s = cr / (eqc ? 1.0f : maxc);
    const float crd = eqc ? 1.0f : cr;
    const float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    float h;
    if (maxc == r)
      h = bc - gc;
    else if (maxc == g)
      h = 2.0f + rc - bc;
    else
      h = 4.0f + gc - rc;
    h = mod1(h / 6.0f + 1.0f);  // torch.fmod; the argument is positive here
    hsv[p] = h;
    hsv[hw + p] = s;
    hsv[2 * hw + p] = maxc;
  }
}

void hsv_to_rgb(const float* hsv, int64_t hw, float* rgb) {
  for (int64_t p = 0; p < hw; ++p) {
    const float h = hsv[p], s = hsv[hw + p], v = hsv[2 * hw + p];
    const float sector = std::floor(h * 6.0f);
    const float f = h * 6.0f - sector;
    const float pp = clamp01(v * (1.0f - s));
    const float q = clamp01(v * (1.0f - s * f));
    const float t = clamp01(v * (1.0f - s * (1.0f - f)));
    int i = static_cast<int>(sector) % 6;
    if (i < 0) i += 6;  // Python's modulo: h slightly below 0 lands in sector 5
    float r, g, b;
    switch (i) {
      case 0: r = v, g = t, b = pp; break;
      case 1: r = q, g = v, b = pp; break;
      case 2: r = pp, g = v, b = t; break;
      case 3: r = pp, g = q, b = v; break;
      case 4: r = t, g = pp, b = v; break;
      default: r = v, g = pp, b = q; break;
    }
    rgb[p] = r;
    rgb[hw + p] = g;
    rgb[2 * hw + p] = b;
  }
}

void adjust_hue(float* img, int64_t c, int64_t hw, double hue_factor) {
  check_channels("adjust_hue", c);
  if (!(hue_factor >= -0.5 && hue_factor <= 0.5)) fail("adjust_hue: hue_factor must be in [-0.5, 0.5], got ", hue_factor);
  if (c == 1) return;  // no hue on a gray image
  rgb_to_hsv(img, hw, img);
  const float shift = static_cast<float>(hue_factor);
  for (int64_t p = 0; p < hw; ++p) {
    // (h + shift) % 1.0 (torch.remainder); a result rounded up to exactly
    // 1.0 is mapped by hsv_to_rgb like 0.
    img[p] = mod1(img[p] + shift);
  }
  hsv_to_rgb(img, hw, img);
}

void color_jitter(float* img, int64_t c, int64_t hw, const JitterParams& params, Luma luma) {
  bool seen[4] = {false, false, false, false};
  for (int k : params.order) {
    if (k < 0 || k > 3 || seen[k])
      fail("color_jitter: order must be a permutation of 0..3, got ", params.order[0], ",", params.order[1], ",",
           params.order[2], ",", params.order[3]);
    seen[k] = true;
  }
  for (int k : params.order) {
    switch (k) {
      case 0: adjust_brightness(img, c, hw, params.brightness); break;
      case 1: adjust_contrast(img, c, hw, params.contrast, luma); break;
      case 2: adjust_saturation(img, c, hw, params.saturation, luma); break;
      default:
        if (params.hue != 0) adjust_hue(img, c, hw, params.hue);
        break;
    }
  }
}

}  // namespace advcl::views
