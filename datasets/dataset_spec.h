// What to load: the format, where it is, which split, and how to fit the
// images to the model. Filled from command-line options by
// apply_dataset_option (datasets/load_dataset.h).
#pragma once
#include <cstdint>
#include <string>

#include "datasets/image_fit.h"

namespace advcl::data {

struct DatasetSpec {
  // auto | cifar10 | cifar100 | stl10 | mnist | fashion-mnist | folder
  std::string format = "auto";
  // A folder, or an official archive (.tar.gz) for CIFAR and STL-10.
  std::string root;
  // train | test; STL-10 also unlabeled and train+unlabeled.
  std::string split = "train";
  int64_t limit = 0;      // keep the first N images (0 = all)
  int64_t per_class = 0;  // keep the first N images of each class (0 = all)
  int64_t size = 0;       // target height = width (0 = as stored)
  int64_t channels = 0;   // 1 or 3 (0 = as stored; image folders default to 3)
  FitMode fit = FitMode::Auto;

  // How many images a reader needs to decode at most: with only --limit the
  // first `limit` suffice; with a per-class subset all must be seen.
  int64_t read_limit() const { return per_class ? 0 : limit; }
};

}  // namespace advcl::data
