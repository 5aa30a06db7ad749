// Per-pixel image operations of the SimCLR augmentation (docs/method.md section 7):
// horizontal flip, grayscale, and ColorJitter's four adjustments. Each is a
// plain function on a float32 CHW buffer with values in [0, 1], free of any
// randomness, so that it can be tested against torchvision in isolation and
// later ported to a GPU kernel unchanged.
//
// Semantics are those of torchvision's *tensor* path on float images
// (torchvision/transforms/_functional_tensor.py), written out in float32 in
// the same operation order: adjust_brightness, adjust_contrast,
// adjust_saturation, adjust_hue (via _rgb2hsv / _hsv2rgb), rgb_to_grayscale.
// The only deliberate choice is the luma weights (see Luma below). The
// AdvCL reference runs the PIL path on uint8 images instead; docs/views.md
// lists how the two differ.
//
// Channels: 3 (RGB) or 1 (gray). On 1-channel images, as in torchvision
// (which copies PIL here): saturation, hue and grayscale are the identity,
// brightness is unchanged, and contrast blends with the image's own mean.
#pragma once
#include <array>
#include <cstdint>

namespace advcl::views {

// Weights of the gray level L = r*R + g*G + b*B.
struct Luma {
  float r, g, b;
};
// PIL's convert("L") (ITU-R 601-2): what the reference's PIL images use, and
// what docs/method.md section 7 prescribes. Our default.
inline constexpr Luma kLumaPil{0.299f, 0.587f, 0.114f};
// torchvision's tensor rgb_to_grayscale (0.2989, following TensorFlow). Only
// the golden tests use it, to compare with torchvision to the last bit.
inline constexpr Luma kLumaTorchvision{0.2989f, 0.587f, 0.114f};

// Mirrors every row of a c x h x w image in place (torchvision hflip).
void hflip(float* img, int64_t c, int64_t h, int64_t w);

// gray[p] = luma of pixel p of a 3-channel image with planes of `hw` pixels.
void rgb_to_gray(const float* rgb, int64_t hw, Luma luma, float* gray);

// RandomGrayscale's operation: each channel becomes the gray level (3
// channels stay 3, as torchvision's num_output_channels = input channels).
// Identity on 1-channel images.
void to_grayscale(float* img, int64_t c, int64_t hw, Luma luma = kLumaPil);

// img = clamp(factor * img, 0, 1): blend with black. factor >= 0.
void adjust_brightness(float* img, int64_t c, int64_t hw, double factor);

// img = clamp(factor * img + (1 - factor) * m, 0, 1) with m the mean gray
// level of the whole image (of the single channel when c = 1). factor >= 0.
void adjust_contrast(float* img, int64_t c, int64_t hw, double factor, Luma luma = kLumaPil);

// img = clamp(factor * img + (1 - factor) * gray(img), 0, 1) per pixel.
// factor >= 0. Identity when c = 1.
void adjust_saturation(float* img, int64_t c, int64_t hw, double factor, Luma luma = kLumaPil);

// Rotates the hue by hue_factor turns, hue_factor in [-0.5, 0.5]: RGB -> HSV,
// h = (h + hue_factor) mod 1, HSV -> RGB. Identity when c = 1.
void adjust_hue(float* img, int64_t c, int64_t hw, double hue_factor);

// torchvision's _rgb2hsv / _hsv2rgb on planes of hw pixels (h, s, v in [0, 1]).
// `in` and `out` may be the same buffer.
void rgb_to_hsv(const float* rgb, int64_t hw, float* hsv);
void hsv_to_rgb(const float* hsv, int64_t hw, float* rgb);

// One ColorJitter draw: the four factors and the order to apply them in.
// order holds a permutation of 0..3 with 0 = brightness, 1 = contrast,
// 2 = saturation, 3 = hue (torchvision's fn_idx). A hue of exactly 0 is
// skipped (it is the identity; the HSV round trip would only add rounding).
struct JitterParams {
  std::array<int, 4> order{{0, 1, 2, 3}};
  double brightness = 1, contrast = 1, saturation = 1, hue = 0;
};

// Applies the adjustments in params.order; throws on an order that is not a
// permutation of 0..3 or a factor out of range.
void color_jitter(float* img, int64_t c, int64_t hw, const JitterParams& params, Luma luma = kLumaPil);

}  // namespace advcl::views
