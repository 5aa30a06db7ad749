#include "datasets/image_dataset.h"

#include <map>
#include <sstream>

#include "engine/common.h"

namespace advcl::data {

std::string ImageDataset::describe() const {
  std::ostringstream os;
  os << name << ": " << n << " images, " << num_classes << " classes, " << channels << "x" << height << "x" << width;
  int64_t unlabelled = 0;
  for (int64_t l : labels) unlabelled += l < 0;
  if (unlabelled) os << " (" << unlabelled << " unlabelled)";
  if (!notes.empty()) os << "; " << notes;
  return os.str();
}

void ImageDataset::check() const {
  if (n < 0 || channels <= 0 || height <= 0 || width <= 0)
    fail(name, ": bad image shape ", channels, "x", height, "x", width);
  if (static_cast<int64_t>(images.size()) != n * image_bytes())
    fail(name, ": holds ", images.size(), " image bytes, expected ", n, " x ", image_bytes());
  if (static_cast<int64_t>(labels.size()) != n) fail(name, ": holds ", labels.size(), " labels for ", n, " images");
  if (static_cast<int64_t>(class_names.size()) != num_classes)
    fail(name, ": ", class_names.size(), " class names for ", num_classes, " classes");
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < -1 || labels[i] >= num_classes)
      fail(name, ": label ", labels[i], " of image ", i, " is outside [0, ", num_classes, ")");
}

void take_subset(ImageDataset& ds, int64_t limit, int64_t per_class) {
  if (limit < 0) fail(ds.name, ": limit must be >= 0, got ", limit);
  if (per_class < 0) fail(ds.name, ": per-class limit must be >= 0, got ", per_class);
  if (limit == 0 && per_class == 0) return;
  std::map<int64_t, int64_t> seen;
  int64_t out = 0, bytes = ds.image_bytes();
  for (int64_t i = 0; i < ds.n; ++i) {
    if (limit && out == limit) break;
    if (per_class && seen[ds.labels[i]]++ >= per_class) continue;
    if (out != i) {
      std::copy(ds.image(i), ds.image(i) + bytes, ds.image(out));
      ds.labels[out] = ds.labels[i];
    }
    ++out;
  }
  ds.n = out;
  ds.images.resize(static_cast<size_t>(out * bytes));
  ds.images.shrink_to_fit();
  ds.labels.resize(static_cast<size_t>(out));
  std::ostringstream os;
  os << (ds.notes.empty() ? "" : "; ") << "subset:";
  if (per_class) os << " first " << per_class << " per class";
  if (limit) os << (per_class ? "," : "") << " first " << limit;
  ds.notes += os.str();
}

}  // namespace advcl::data
