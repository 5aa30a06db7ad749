// The SimCLR augmentation of AdvCL (docs/method.md section 7), as a per-sample
// transform for the batch loader: uint8 CHW in, float32 CHW in [0, 1] out.
//
//   RandomResizedCrop(size, scale (0.2, 1), ratio (3/4, 4/3), bilinear)
//   RandomHorizontalFlip(p = 0.5)
//   RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p = 0.8)
//   RandomGrayscale(p = 0.2)
//
// The image is converted to float (/255, as ToTensor) first and every step
// works in float32 with torchvision's tensor semantics (datasets/color_ops.h,
// datasets/resized_crop.h); the reference works on uint8 PIL images and rounds
// to 8 bits after each step (docs/views.md).
//
// Draws from the sample's SampleRng, in this order (fixed, so a view is a
// function of (seed, epoch, index, view) alone):
//   1. the crop: per try, uniform() for the area fraction, uniform() for the
//      log aspect ratio; for the accepted try below(h - height + 1) for the
//      top and below(w - width + 1) for the left (sample_resized_crop);
//   2. flip: uniform() < flip_prob;
//   3. jitter applied: uniform() < jitter_prob; only if applied:
//      the order by Fisher-Yates, below(4), below(3), below(2), then
//      uniform() each for the brightness, contrast, saturation and hue factors
//      (all four drawn whatever the channel count or strengths);
//   4. grayscale: uniform() < grayscale_prob.
//
// One-channel images (e.g. Fashion-MNIST kept gray): the crop and flip are
// as for colour; the jitter's saturation and hue are the identity (its
// brightness and contrast still apply, the contrast blending with the
// image's mean); the grayscale step is the identity. The draws are the same,
// so the flip/crop decisions do not depend on the channel count.
#pragma once
#include <cstdint>

#include "datasets/color_ops.h"
#include "datasets/resized_crop.h"
#include "datasets/transforms.h"

namespace advcl::views {

struct SimclrOptions {
  int64_t size = 32;  // output is size x size
  ResizedCropOptions crop;
  double flip_prob = 0.5;
  double jitter_prob = 0.8;
  // ColorJitter strengths: factors are drawn uniformly from
  // [max(0, 1 - s), 1 + s] for brightness, contrast and saturation and from
  // [-hue, hue] for the hue (hue <= 0.5). A strength of 0 makes that
  // adjustment the identity.
  double brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.1;
  double grayscale_prob = 0.2;
  Luma luma = kLumaPil;  // used by contrast, saturation and grayscale
};

// Throws with a message naming the bad option.
void check_simclr_options(const SimclrOptions& opt);

// Every random decision of one SimCLR view.
struct SimclrDraw {
  CropBox box;
  bool flip = false;
  bool jitter = false;  // when false, `color` is unused
  JitterParams color;
  bool grayscale = false;
};

// Draws one view's decisions for an h x w image, in the order documented above.
SimclrDraw draw_simclr(data::SampleRng& rng, int64_t h, int64_t w, const SimclrOptions& opt);

// Renders a view: out (c x size x size) from `in` (c x h x w floats in [0, 1]).
void render_simclr(const float* in, int64_t c, int64_t h, int64_t w, const SimclrDraw& draw, const SimclrOptions& opt,
                   float* out);

// draw_simclr + render_simclr on a uint8 image (1 or 3 channels).
class SimclrTransform : public data::SampleTransform {
 public:
  explicit SimclrTransform(SimclrOptions opt = {});
  Shape view_shape(int64_t v, int64_t c, int64_t h, int64_t w) const override;
  void apply(const data::ImageU8& in, data::SampleRng& rng, float* const* out) const override;
  const SimclrOptions& options() const { return opt_; }

 private:
  SimclrOptions opt_;
};

}  // namespace advcl::views
