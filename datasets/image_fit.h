// Bringing stored images to the model's input shape: channel conversion,
// zero padding and bilinear resizing of uint8 CHW images.
//
// Resize convention (the one torchvision.transforms.Resize uses on PIL
// images, i.e. PIL's Image.resize(..., BILINEAR)): separable triangle filter
// with half-pixel centres; output pixel x samples around source coordinate
// (x + 0.5) * in/out; when shrinking, the filter's support is widened by the
// scale factor in/out (antialiasing: 96 -> 32 averages 3x3-ish neighbourhoods
// instead of picking every third pixel); weights are normalised over the
// source pixels inside the image (no padding at the borders). We compute in
// float and round once at the end, where PIL rounds after each pass in fixed
// point, so results may differ from PIL by 1 grey level. The aspect ratio is
// not preserved: the image is stretched to size x size.
//
// Channel conversion: 1 -> 3 replicates the grey plane; 3 -> 1 is PIL's
// convert("L"): L = (299 R + 587 G + 114 B) / 1000, rounded.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace advcl::data {

struct ResizeTaps;  // filter weights of one resize, computed once (image_fit.cpp)

enum class FitMode {
  Auto,    // pad when the image is not larger than the target, else resize
  Pad,     // zero padding, centred (only for images not larger than the target)
  Resize,  // bilinear resize to the target
};
// "auto" | "pad" | "resize"; throws naming the option on anything else.
FitMode parse_fit_mode(const std::string& s);
const char* fit_mode_name(FitMode m);

// Converts images of one input shape to one output shape; set up once per
// dataset, then applied image by image (so large files stream through).
class ImageFitter {
 public:
  // size: target height = width, 0 keeps the stored size; channels: 1 or 3,
  // 0 keeps the stored count. `what` names the dataset in errors.
  ImageFitter(int64_t in_c, int64_t in_h, int64_t in_w, int64_t size, int64_t channels, FitMode mode,
              const std::string& what);
  int64_t out_c() const { return oc_; }
  int64_t out_h() const { return oh_; }
  int64_t out_w() const { return ow_; }
  int64_t in_bytes() const { return c_ * h_ * w_; }
  int64_t out_bytes() const { return oc_ * oh_ * ow_; }
  bool identity() const { return identity_; }
  // What the fitter does, for ImageDataset::notes; empty for the identity.
  const std::string& note() const { return note_; }
  // src: in_c x in_h x in_w CHW; dst: out_c x out_h x out_w CHW.
  void apply(const uint8_t* src, uint8_t* dst) const;

 private:
  int64_t c_, h_, w_, oc_, oh_, ow_;
  bool identity_ = true, resize_ = false;
  int64_t pad_top_ = 0, pad_left_ = 0;
  std::string note_;
  std::shared_ptr<const ResizeTaps> taps_;
};

// The bilinear resize described above, on one plane of floats.
void resize_plane_bilinear(const float* src, int64_t h, int64_t w, float* dst, int64_t oh, int64_t ow);

}  // namespace advcl::data
