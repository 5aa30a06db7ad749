// Per-sample transforms run by the batch loader's worker threads: uint8 CHW
// image in, one or more float32 CHW views out.
//
// Randomness: each sample gets a SampleRng over the counter-based stream
// (seed, RngPurpose::Augment, step = epoch, sample = dataset index), and a
// transform draws from it in a fixed order. So a sample's augmentation depends
// only on (seed, epoch, index), never on which thread or batch handled it.
//
// Other code plugs in its own pipelines by implementing SampleTransform (e.g.
// the contrastive stage returns two augmented views and one plain view).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/common.h"
#include "engine/rng.h"

namespace advcl::data {

// Sequential draws from one sample's stream.
class SampleRng {
 public:
  explicit SampleRng(RngKey key, uint64_t start = 0) : key_(key), pos_(start) {}
  // Uniform integer in [0, n), n >= 1.
  uint32_t below(uint32_t n) { return key_.below(pos_++, n); }
  // Uniform double in (0, 1).
  double uniform() { return key_.uniform_double(pos_++); }
  // An independent stream for sub-pipeline `k` (views of a MultiView): draw
  // positions (k + 1) * 2^24 onwards, far beyond what one pipeline uses. (A
  // RngKey addresses 2^33 draw positions: the Philox block counter is 32 bits
  // and each draw takes two words; k must stay below 2^9 - 1.)
  SampleRng fork(uint64_t k) const {
    if (k >= 511) fail("SampleRng::fork: sub-stream ", k, " out of range (at most 510)");
    return SampleRng(key_, (k + 1) << 24);
  }
  const RngKey& key() const { return key_; }

 private:
  RngKey key_;
  uint64_t pos_;
};

// A uint8 image, CHW, borrowed.
struct ImageU8 {
  const uint8_t* data;
  int64_t c, h, w;
};

class SampleTransform {
 public:
  virtual ~SampleTransform() = default;
  virtual int64_t num_views() const { return 1; }
  // {C, H, W} of view v for inputs of shape c x h x w; throws if unusable.
  virtual Shape view_shape(int64_t v, int64_t c, int64_t h, int64_t w) const = 0;
  // Writes view v of `in` to out[v] (view_shape(v) floats, CHW).
  virtual void apply(const ImageU8& in, SampleRng& rng, float* const* out) const = 0;
};

// Pixels / 255 as float in [0, 1] (torchvision ToTensor); no normalisation, no randomness.
class ToFloat : public SampleTransform {
 public:
  Shape view_shape(int64_t v, int64_t c, int64_t h, int64_t w) const override;
  void apply(const ImageU8& in, SampleRng& rng, float* const* out) const override;
};

// torchvision's RandomCrop(size, padding) (zero padding) then
// RandomHorizontalFlip(flip_prob), then to float [0, 1]. Draws, in order:
// top = below(h + 2*padding - size + 1), left = below(w + 2*padding - size + 1),
// flip = uniform() < flip_prob.
class CropFlip : public SampleTransform {
 public:
  CropFlip(int64_t size, int64_t padding, double flip_prob = 0.5);
  Shape view_shape(int64_t v, int64_t c, int64_t h, int64_t w) const override;
  void apply(const ImageU8& in, SampleRng& rng, float* const* out) const override;

 private:
  int64_t size_, padding_;
  double flip_prob_;
};

// Several pipelines over the same sample; view v of the result is the
// (single) view of pipelines[v], drawn from rng.fork(v).
class MultiView : public SampleTransform {
 public:
  explicit MultiView(std::vector<std::shared_ptr<const SampleTransform>> pipelines);
  int64_t num_views() const override { return static_cast<int64_t>(pipes_.size()); }
  Shape view_shape(int64_t v, int64_t c, int64_t h, int64_t w) const override;
  void apply(const ImageU8& in, SampleRng& rng, float* const* out) const override;

 private:
  std::vector<std::shared_ptr<const SampleTransform>> pipes_;
};

// Building block: out (c x size x size floats) = the size x size window at
// (top, left) of `in` zero-padded by `padding` on every side, mirrored left
// to right when flip, scaled to [0, 1].
void crop_padded_to_float(const ImageU8& in, int64_t padding, int64_t top, int64_t left, int64_t size, bool flip,
                          float* out);

}  // namespace advcl::data
