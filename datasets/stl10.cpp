#include "datasets/stl10.h"

#include <map>
#include <memory>
#include <sstream>

#include "datasets/byte_stream.h"
#include "datasets/dataset_builder.h"
#include "datasets/tar_reader.h"
#include "engine/common.h"

namespace advcl::data {

namespace {

constexpr int64_t kSide = 96, kImageBytes = 3 * kSide * kSide;

std::string basename_of(const std::string& p) {
  size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// The X/y file pairs of a split, in order; an empty y means unlabelled.
std::vector<std::pair<std::string, std::string>> split_files(const std::string& split) {
  if (split == "train") return {{"train_X.bin", "train_y.bin"}};
  if (split == "test") return {{"test_X.bin", "test_y.bin"}};
  if (split == "unlabeled") return {{"unlabeled_X.bin", ""}};
  if (split == "train+unlabeled") return {{"train_X.bin", "train_y.bin"}, {"unlabeled_X.bin", ""}};
  fail("STL-10: --split must be train, test, unlabeled or train+unlabeled, got '", split, "'");
}

}  // namespace

std::vector<int64_t> read_stl10_labels(ByteStream& in) {
  std::vector<uint8_t> raw = in.read_rest();
  if (raw.empty()) fail(in.name(), ": empty label file");
  std::vector<int64_t> out(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] < 1 || raw[i] > 10)
      fail(in.name(), ": label ", i, " is ", int{raw[i]}, ", outside 1..10 (STL-10 labels are 1-based)");
    out[i] = raw[i] - 1;
  }
  return out;
}

// Reads images until the end of the file (complete = true) or until the
// builder is full; returns how many were read.
int64_t read_stl10_images(ByteStream& in, DatasetBuilder& b, bool& complete) {
  complete = false;
  std::vector<uint8_t> raw(kImageBytes), chw(kImageBytes);
  int64_t n = 0;
  while (b.wants_more()) {
    size_t got = in.read_full(raw.data(), raw.size());
    if (got == 0) {
      complete = true;
      break;
    }
    if (got != raw.size())
      fail(in.name(), ": truncated record: image ", n, " has only ", got, " of ", kImageBytes,
           " bytes (the file is not a whole number of 3x96x96 images)");
    stl10_image_to_chw(raw.data(), chw.data());
    b.add(chw.data(), -1);
    ++n;
  }
  if (n == 0 && complete) fail(in.name(), ": empty image file");
  return n;
}

void stl10_image_to_chw(const uint8_t* src, uint8_t* dst) {
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t x = 0; x < kSide; ++x)
      for (int64_t y = 0; y < kSide; ++y) dst[(c * kSide + y) * kSide + x] = src[(c * kSide + x) * kSide + y];
}

std::string find_stl10(const std::string& root, std::vector<std::string>* looked_for) {
  auto note = [&](const std::string& s) {
    if (looked_for) looked_for->push_back(s);
  };
  for (const std::string& dir : {path_join(root, "stl10_binary"), root}) {
    note(path_join(dir, "*_X.bin"));
    for (const char* f : {"train_X.bin", "test_X.bin", "unlabeled_X.bin"})
      if (path_is_file(path_join(dir, f))) return dir;
  }
  note(path_join(root, "stl10_binary.tar.gz"));
  if (path_is_file(path_join(root, "stl10_binary.tar.gz"))) return path_join(root, "stl10_binary.tar.gz");
  if (path_is_file(root) && is_tar_archive_name(root)) return root;
  return "";
}

ImageDataset load_stl10(const DatasetSpec& spec) {
  std::vector<std::string> looked;
  std::string src = find_stl10(spec.root, &looked);
  if (src.empty()) {
    std::ostringstream os;
    for (const auto& l : looked) os << "\n  " << l;
    fail("--data ", spec.root, ": no STL-10 binary data found; looked for:", os.str());
  }
  const bool archive = path_is_file(src);
  const auto files = split_files(spec.split);
  DatasetBuilder b(spec, "stl10 " + spec.split + (archive ? " (archive)" : ""), 3, kSide, kSide);

  // Per X file: where its images start in the builder and how many; its labels.
  struct Part {
    int64_t first = 0, count = -1;
    std::vector<int64_t> labels;
    bool have_labels = false, complete = false;
    std::string x_name, y_name;
  };
  std::vector<Part> parts(files.size());
  if (!archive) {
    for (size_t p = 0; p < files.size(); ++p) {
      std::string x = path_join(src, files[p].first);
      if (!path_is_file(x)) fail("--data ", spec.root, ": missing STL-10 file ", x);
      parts[p].x_name = x;
      if (!files[p].second.empty()) {
        std::string y = path_join(src, files[p].second);
        if (!path_is_file(y)) fail("--data ", spec.root, ": missing STL-10 label file ", y);
        FileStream ys(y);
        parts[p].labels = read_stl10_labels(ys);
        parts[p].have_labels = true;
        parts[p].y_name = y;
      }
      parts[p].first = b.count();
      if (b.wants_more()) {
        FileStream xs(x);
        parts[p].count = read_stl10_images(xs, b, parts[p].complete);
      } else {
        parts[p].count = 0;
      }
    }
  } else {
    // Archive members come in archive order: take what we need as it passes.
    // The builder keeps images in reading order, so for train+unlabeled the
    // archive must hold train_X.bin before unlabeled_X.bin (the official one does).
    TarReader tar(src);
    while (tar.next()) {
      std::string base = basename_of(tar.member_name());
      for (size_t p = 0; p < files.size(); ++p) {
        if (base == files[p].second) {
          parts[p].labels = read_stl10_labels(tar.member());
          parts[p].have_labels = true;
          parts[p].y_name = tar.member().name();
        } else if (base == files[p].first && parts[p].count < 0) {
          for (size_t q = p + 1; q < files.size(); ++q)
            if (parts[q].count >= 0)
              fail(src, ": archive stores ", files[q].first, " before ", files[p].first,
                   "; extract it and point --data at the folder");
          parts[p].x_name = tar.member().name();
          parts[p].first = b.count();
          parts[p].count = b.wants_more() ? read_stl10_images(tar.member(), b, parts[p].complete) : 0;
        }
      }
    }
    std::string missing;
    for (size_t p = 0; p < files.size(); ++p) {
      if (parts[p].count < 0) missing += " " + files[p].first;
      if (!files[p].second.empty() && !parts[p].have_labels) missing += " " + files[p].second;
    }
    if (!missing.empty()) fail(src, ": archive lacks the STL-10 files:", missing);
  }

  auto& labels = b.labels();
  for (const Part& p : parts) {
    if (!p.have_labels) continue;
    int64_t total = static_cast<int64_t>(p.labels.size());
    // With --limit an image file may not be read to its end; otherwise the counts must agree.
    if ((p.complete && total != p.count) || total < p.count)
      fail(p.y_name, ": ", total, " labels for the ", p.count, " images of ", p.x_name);
    for (int64_t i = 0; i < p.count; ++i) labels[p.first + i] = p.labels[i];
  }
  return b.finish(stl10_class_names());
}

const std::vector<std::string>& stl10_class_names() {
  static const std::vector<std::string> names = {"airplane", "bird", "car", "cat", "deer",
                                                 "dog", "horse", "monkey", "ship", "truck"};
  return names;
}

}  // namespace advcl::data
