// RandomResizedCrop (docs/method.md section 7): torchvision's random box and a
// bilinear, antialiased resize of the box to the output size, on float CHW.
//
// The resize is torchvision's tensor path
//   F.resized_crop(img, top, left, height, width, [out_h, out_w],
//                  InterpolationMode.BILINEAR, antialias=True)
// i.e. PyTorch's interpolate(mode="bilinear", align_corners=False,
// antialias=True): separable, each output sample a normalised triangle
// filter centred at (o + 0.5) * scale in input coordinates (scale = in/out),
// the triangle widened by `scale` when shrinking so that every input pixel
// contributes (the antialiasing), and the filter cut off at the image edges
// and renormalised. This is the same filter PIL's Image.resize(BILINEAR)
// applies, which the reference uses on uint8 images; PIL then rounds each
// pass to 8 bits with fixed-point weights, where we stay in float.
#pragma once
#include <cstdint>

#include "datasets/transforms.h"

namespace advcl::views {

// A crop box: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

struct ResizedCropOptions {
  double scale_min = 0.2, scale_max = 1.0;         // area fraction of the box
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // width / height of the box
};

// Throws unless 0 < scale_min <= scale_max and 0 < ratio_min <= ratio_max.
void check_resized_crop_options(const ResizedCropOptions& opt);

// torchvision's RandomResizedCrop.get_params for an h x w image. Up to 10
// tries, each drawing (in this order) s = U(scale_min, scale_max) and
// r = exp(U(log ratio_min, log ratio_max)); the box is
// width = round(sqrt(s*h*w*r)), height = round(sqrt(s*h*w/r)) (round half to
// even, as Python's round) and is accepted when 0 < width <= w and
// 0 < height <= h, whereupon top = below(h - height + 1) and
// left = below(w - width + 1) are drawn. If all 10 tries fail: the central
// crop of the whole image, its aspect ratio clamped into [ratio_min, ratio_max].
CropBox sample_resized_crop(data::SampleRng& rng, int64_t h, int64_t w, const ResizedCropOptions& opt);

// out (c x out_h x out_w) = the box of `in` (c x h x w) resized as above.
// The box must lie inside the image.
void resized_crop(const float* in, int64_t c, int64_t h, int64_t w, CropBox box, int64_t out_h, int64_t out_w,
                  float* out);

}  // namespace advcl::views
