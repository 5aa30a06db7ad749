#include "datasets/transforms.h"

namespace advcl::data {

void crop_padded_to_float(const ImageU8& in, int64_t padding, int64_t top, int64_t left, int64_t size, bool flip,
                          float* out) {
  for (int64_t c = 0; c < in.c; ++c)
    for (int64_t y = 0; y < size; ++y) {
      int64_t sy = top + y - padding;  // row in the unpadded image
      float* row = out + (c * size + y) * size;
      for (int64_t x = 0; x < size; ++x) {
        int64_t sx = left + (flip ? size - 1 - x : x) - padding;
        bool inside = sy >= 0 && sy < in.h && sx >= 0 && sx < in.w;
        // A true division, not * (1/255): bit-identical to torchvision's ToTensor (x.float().div(255)).
        row[x] = inside ? static_cast<float>(in.data[(c * in.h + sy) * in.w + sx]) / 255.0f : 0.0f;
      }
    }
}

Shape ToFloat::view_shape(int64_t, int64_t c, int64_t h, int64_t w) const { return {c, h, w}; }

void ToFloat::apply(const ImageU8& in, SampleRng&, float* const* out) const {
  const int64_t n = in.c * in.h * in.w;
  for (int64_t i = 0; i < n; ++i) out[0][i] = static_cast<float>(in.data[i]) / 255.0f;  // as ToTensor
}

CropFlip::CropFlip(int64_t size, int64_t padding, double flip_prob)
    : size_(size), padding_(padding), flip_prob_(flip_prob) {
  if (size < 1) fail("CropFlip: crop size must be >= 1, got ", size);
  if (padding < 0) fail("CropFlip: padding must be >= 0, got ", padding);
  if (flip_prob < 0 || flip_prob > 1) fail("CropFlip: flip probability must be in [0, 1], got ", flip_prob);
}

Shape CropFlip::view_shape(int64_t, int64_t c, int64_t h, int64_t w) const {
  if (h + 2 * padding_ < size_ || w + 2 * padding_ < size_)
    fail("CropFlip: crop ", size_, " is larger than the ", h, "x", w, " images padded by ", padding_);
  return {c, size_, size_};
}

void CropFlip::apply(const ImageU8& in, SampleRng& rng, float* const* out) const {
  int64_t top = rng.below(static_cast<uint32_t>(in.h + 2 * padding_ - size_ + 1));
  int64_t left = rng.below(static_cast<uint32_t>(in.w + 2 * padding_ - size_ + 1));
  bool flip = rng.uniform() < flip_prob_;
  crop_padded_to_float(in, padding_, top, left, size_, flip, out[0]);
}

MultiView::MultiView(std::vector<std::shared_ptr<const SampleTransform>> pipelines) : pipes_(std::move(pipelines)) {
  if (pipes_.empty()) fail("MultiView: needs at least one pipeline");
  for (const auto& p : pipes_)
    if (!p || p->num_views() != 1) fail("MultiView: each pipeline must be a single-view transform");
}

Shape MultiView::view_shape(int64_t v, int64_t c, int64_t h, int64_t w) const {
  return pipes_.at(static_cast<size_t>(v))->view_shape(0, c, h, w);
}

void MultiView::apply(const ImageU8& in, SampleRng& rng, float* const* out) const {
  for (size_t v = 0; v < pipes_.size(); ++v) {
    SampleRng sub = rng.fork(v);
    float* o[1] = {out[v]};
    pipes_[v]->apply(in, sub, o);
  }
}

}  // namespace advcl::data
