// The in-memory form every dataset reader produces: N images of one shape,
// stored as uint8 CHW one after another, with int64 labels. Readers decode
// once; the batch loader (datasets/batch_loader.h) only copies and augments.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace advcl::data {

struct ImageDataset {
  std::string name;            // e.g. "cifar10 train (python)"
  int64_t n = 0, channels = 0, height = 0, width = 0;
  std::vector<uint8_t> images;  // n * channels * height * width, each image CHW
  std::vector<int64_t> labels;  // n entries in [0, num_classes), or -1 for unlabelled images
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries
  // What was done to fit the model's input (padding, resizing, channel
  // replication); empty when the images are as stored.
  std::string notes;

  int64_t image_bytes() const { return channels * height * width; }
  const uint8_t* image(int64_t i) const { return images.data() + i * image_bytes(); }
  uint8_t* image(int64_t i) { return images.data() + i * image_bytes(); }

  // "cifar10 train (python): 50000 images, 10 classes, 3x32x32" (+ notes).
  std::string describe() const;
  // Throws unless the sizes agree with each other and every label is -1 or
  // within [0, num_classes).
  void check() const;
};

// Keeps the first `per_class` images of every class (0 = all), then the first
// `limit` of those (0 = all), in dataset order. Quick runs use this; the
// choice is deterministic and needs no randomness. Unlabelled images (-1)
// count as their own group for `per_class`.
void take_subset(ImageDataset& ds, int64_t limit, int64_t per_class);

}  // namespace advcl::data
