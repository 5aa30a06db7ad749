// Shared by the readers: fits each decoded image to the requested shape as it
// arrives (so large files never sit in memory at their stored size) and
// appends it to an ImageDataset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dataset_spec.h"
#include "datasets/image_dataset.h"
#include "datasets/image_fit.h"

namespace advcl::data {

class DatasetBuilder {
 public:
  // Images arrive as in_c x in_h x in_w CHW uint8.
  DatasetBuilder(const DatasetSpec& spec, std::string name, int64_t in_c, int64_t in_h, int64_t in_w);
  // False once spec.read_limit() images are in: the reader may stop.
  bool wants_more() const { return max_ == 0 || ds_.n < max_; }
  void add(const uint8_t* chw, int64_t label);
  // Adds an image already at the output shape (image folders with mixed sizes).
  void add_fitted(const uint8_t* chw, int64_t label);
  void set_note(std::string note) { ds_.notes = std::move(note); }
  // Labels may come after the images (STL-10 archives): set them at the end.
  std::vector<int64_t>& labels() { return ds_.labels; }
  int64_t count() const { return ds_.n; }
  // Checks, applies the subset options and returns the dataset.
  ImageDataset finish(std::vector<std::string> class_names);

 private:
  const DatasetSpec& spec_;
  ImageFitter fitter_;
  ImageDataset ds_;
  int64_t max_;
};

}  // namespace advcl::data
