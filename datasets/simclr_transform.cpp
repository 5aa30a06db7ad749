#include "datasets/simclr_transform.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/common.h"

namespace advcl::views {
namespace {

void check_prob(const char* name, double p) {
  if (!(p >= 0 && p <= 1)) fail("SimCLR transform: ", name, " must be a probability in [0, 1], got ", p);
}

void check_strength(const char* name, double s) {
  if (!(s >= 0) || !std::isfinite(s)) fail("SimCLR transform: ", name, " strength must be finite and >= 0, got ", s);
}

// U(lo, hi) from one draw.
double uniform_in(data::SampleRng& rng, double lo, double hi) { return lo + (hi - lo) * rng.uniform(); }

}  // namespace

void check_simclr_options(const SimclrOptions& opt) {
  if (opt.size < 1) fail("SimCLR transform: output size must be >= 1, got ", opt.size);
  check_resized_crop_options(opt.crop);
  check_prob("flip probability", opt.flip_prob);
  check_prob("colour-jitter probability", opt.jitter_prob);
  check_prob("grayscale probability", opt.grayscale_prob);
  check_strength("brightness", opt.brightness);
  check_strength("contrast", opt.contrast);
  check_strength("saturation", opt.saturation);
  check_strength("hue", opt.hue);
  if (opt.hue > 0.5) fail("SimCLR transform: hue strength must be at most 0.5, got ", opt.hue);
}

SimclrDraw draw_simclr(data::SampleRng& rng, int64_t h, int64_t w, const SimclrOptions& opt) {
  SimclrDraw d;
  d.box = sample_resized_crop(rng, h, w, opt.crop);
  d.flip = rng.uniform() < opt.flip_prob;
  d.jitter = rng.uniform() < opt.jitter_prob;
  if (d.jitter) {
    // A uniformly random permutation (torch.randperm(4) in torchvision).
    std::array<int, 4> order{{0, 1, 2, 3}};
    for (uint32_t k = 4; k > 1; --k) std::swap(order[k - 1], order[rng.below(k)]);
    d.color.order = order;
    d.color.brightness = uniform_in(rng, std::max(0.0, 1 - opt.brightness), 1 + opt.brightness);
    d.color.contrast = uniform_in(rng, std::max(0.0, 1 - opt.contrast), 1 + opt.contrast);
    d.color.saturation = uniform_in(rng, std::max(0.0, 1 - opt.saturation), 1 + opt.saturation);
    d.color.hue = uniform_in(rng, -opt.hue, opt.hue);
  }
  d.grayscale = rng.uniform() < opt.grayscale_prob;
  return d;
}

void render_simclr(const float* in, int64_t c, int64_t h, int64_t w, const SimclrDraw& draw, const SimclrOptions& opt,
                   float* out) {
  const int64_t s = opt.size, hw = s * s;
  resized_crop(in, c, h, w, draw.box, s, s, out);
  if (draw.flip) hflip(out, c, s, s);
  if (draw.jitter) color_jitter(out, c, hw, draw.color, opt.luma);
  if (draw.grayscale) to_grayscale(out, c, hw, opt.luma);
}

SimclrTransform::SimclrTransform(SimclrOptions opt) : opt_(opt) { check_simclr_options(opt_); }

Shape SimclrTransform::view_shape(int64_t, int64_t c, int64_t h, int64_t w) const {
  if (c != 1 && c != 3) fail("SimCLR transform: images must have 1 or 3 channels, got ", c);
  if (h < 1 || w < 1) fail("SimCLR transform: empty ", h, "x", w, " images");
  return {c, opt_.size, opt_.size};
}

void SimclrTransform::apply(const data::ImageU8& in, data::SampleRng& rng, float* const* out) const {
  const int64_t n = in.c * in.h * in.w;
  std::vector<float> img(static_cast<size_t>(n));
  // A true division, bit-identical to ToTensor (x.float().div(255)).
  for (int64_t i = 0; i < n; ++i) img[static_cast<size_t>(i)] = static_cast<float>(in.data[i]) / 255.0f;
  const SimclrDraw d = draw_simclr(rng, in.h, in.w, opt_);
  render_simclr(img.data(), in.c, in.h, in.w, d, opt_, out[0]);
}

}  // namespace advcl::views
