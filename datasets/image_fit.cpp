#include "datasets/image_fit.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/common.h"

namespace advcl::data {

FitMode parse_fit_mode(const std::string& s) {
  if (s == "auto") return FitMode::Auto;
  if (s == "pad") return FitMode::Pad;
  if (s == "resize") return FitMode::Resize;
  fail("--fit: expected auto, pad or resize, got '", s, "'");
}

const char* fit_mode_name(FitMode m) {
  switch (m) {
    case FitMode::Auto: return "auto";
    case FitMode::Pad: return "pad";
    case FitMode::Resize: return "resize";
  }
  return "?";
}

namespace {

// Filter taps of one axis: output i reads src[first[i] + k] * weight[i][k].
struct Taps {
  std::vector<int64_t> first;
  std::vector<std::vector<float>> weight;
};

}  // namespace

struct ResizeTaps {
  Taps x, y;
};

namespace {

Taps make_taps(int64_t in, int64_t out) {
  Taps t;
  double scale = static_cast<double>(in) / static_cast<double>(out);
  double filterscale = std::max(scale, 1.0);
  double support = filterscale;  // the triangle filter has support 1
  for (int64_t o = 0; o < out; ++o) {
    double center = (static_cast<double>(o) + 0.5) * scale;
    int64_t lo = std::max<int64_t>(static_cast<int64_t>(std::floor(center - support + 0.5)), 0);
    int64_t hi = std::min<int64_t>(static_cast<int64_t>(std::floor(center + support + 0.5)), in);
    std::vector<double> w;
    double total = 0;
    for (int64_t x = lo; x < hi; ++x) {
      double d = std::fabs((static_cast<double>(x) + 0.5 - center) / filterscale);
      double v = d < 1 ? 1 - d : 0;
      w.push_back(v);
      total += v;
    }
    std::vector<float> wf;
    for (double v : w) wf.push_back(static_cast<float>(total > 0 ? v / total : 0));
    t.first.push_back(lo);
    t.weight.push_back(std::move(wf));
  }
  return t;
}

uint8_t to_u8(float v) { return static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, std::floor(v + 0.5f)))); }

}  // namespace

namespace {

void resize_with(const Taps& tx, const Taps& ty, const float* src, int64_t h, int64_t w, float* dst, int64_t oh,
                 int64_t ow) {
  std::vector<float> tmp(static_cast<size_t>(h * ow));  // horizontal pass first, as PIL
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      float acc = 0;
      const auto& wt = tx.weight[x];
      for (size_t k = 0; k < wt.size(); ++k) acc += src[y * w + tx.first[x] + static_cast<int64_t>(k)] * wt[k];
      tmp[y * ow + x] = acc;
    }
  for (int64_t y = 0; y < oh; ++y) {
    const auto& wt = ty.weight[y];
    for (int64_t x = 0; x < ow; ++x) {
      float acc = 0;
      for (size_t k = 0; k < wt.size(); ++k) acc += tmp[(ty.first[y] + static_cast<int64_t>(k)) * ow + x] * wt[k];
      dst[y * ow + x] = acc;
    }
  }
}

}  // namespace

void resize_plane_bilinear(const float* src, int64_t h, int64_t w, float* dst, int64_t oh, int64_t ow) {
  resize_with(make_taps(w, ow), make_taps(h, oh), src, h, w, dst, oh, ow);
}

ImageFitter::ImageFitter(int64_t in_c, int64_t in_h, int64_t in_w, int64_t size, int64_t channels, FitMode mode,
                         const std::string& what)
    : c_(in_c), h_(in_h), w_(in_w), oc_(in_c), oh_(in_h), ow_(in_w) {
  if (size < 0) fail(what, ": --size must be >= 0, got ", size);
  if (channels != 0 && channels != 1 && channels != 3) fail(what, ": --channels must be 1 or 3, got ", channels);
  if (channels && channels != in_c && !(in_c == 1 || in_c == 3))
    fail(what, ": cannot convert ", in_c, "-channel images to ", channels, " channels");
  std::ostringstream note;
  if (channels && channels != in_c) {
    oc_ = channels;
    note << (in_c == 1 ? "grey replicated to 3 channels" : "converted to grey (L = 0.299R + 0.587G + 0.114B)");
  }
  if (size && (size != in_h || size != in_w)) {
    oh_ = ow_ = size;
    bool smaller = in_h <= size && in_w <= size;
    if (mode == FitMode::Pad && !smaller)
      fail(what, ": --fit pad: images of ", in_h, "x", in_w, " are larger than --size ", size,
           " (use --fit resize)");
    resize_ = mode == FitMode::Resize || (mode == FitMode::Auto && !smaller);
    if (!note.str().empty()) note << ", ";
    if (resize_) {
      taps_ = std::make_shared<const ResizeTaps>(ResizeTaps{make_taps(in_w, size), make_taps(in_h, size)});
      note << "resized bilinear " << in_h << "x" << in_w << " -> " << size << "x" << size;
    } else {
      pad_top_ = (size - in_h) / 2;
      pad_left_ = (size - in_w) / 2;
      note << "zero-padded " << in_h << "x" << in_w << " -> " << size << "x" << size;
      if (size - in_h == size - in_w && (size - in_h) % 2 == 0) note << " (" << pad_top_ << " on each side)";
    }
  }
  note_ = note.str();
  identity_ = note_.empty();
}

void ImageFitter::apply(const uint8_t* src, uint8_t* dst) const {
  if (identity_) {
    std::copy(src, src + in_bytes(), dst);
    return;
  }
  int64_t plane = h_ * w_, oplane = oh_ * ow_;
  if (!resize_ && (oc_ == c_ || c_ == 1)) {  // padding and/or replication: plain copies
    std::fill(dst, dst + oc_ * oplane, uint8_t{0});
    for (int64_t c = 0; c < oc_; ++c) {
      const uint8_t* s = src + (c_ == 1 ? 0 : c * plane);
      for (int64_t y = 0; y < h_; ++y)
        std::copy(s + y * w_, s + (y + 1) * w_, dst + c * oplane + (y + pad_top_) * ow_ + pad_left_);
    }
    return;
  }
  // Channels first, into floats, so a resize sees the final channel count.
  std::vector<float> chans(static_cast<size_t>(oc_ * plane));
  for (int64_t c = 0; c < oc_; ++c)
    for (int64_t i = 0; i < plane; ++i) {
      float v;
      if (oc_ == c_) v = src[c * plane + i];
      else if (c_ == 1) v = src[i];
      else v = std::floor((299.0f * src[i] + 587.0f * src[plane + i] + 114.0f * src[2 * plane + i]) / 1000.0f + 0.5f);
      chans[c * plane + i] = v;
    }
  if (resize_) {
    std::vector<float> out(static_cast<size_t>(oplane));
    for (int64_t c = 0; c < oc_; ++c) {
      resize_with(taps_->x, taps_->y, chans.data() + c * plane, h_, w_, out.data(), oh_, ow_);
      for (int64_t i = 0; i < oplane; ++i) dst[c * oplane + i] = to_u8(out[i]);
    }
    return;
  }
  std::fill(dst, dst + oc_ * oplane, uint8_t{0});
  for (int64_t c = 0; c < oc_; ++c)
    for (int64_t y = 0; y < h_; ++y)
      for (int64_t x = 0; x < w_; ++x)
        dst[c * oplane + (y + pad_top_) * ow_ + x + pad_left_] = to_u8(chans[c * plane + y * w_ + x]);
}

}  // namespace advcl::data
