// libFuzzer harness: STL-10 records (datasets/stl10.h): the bytes as a label
// file, then as an image file of 3x96x96 column-major records (resized to
// 32x32 as --size 32 does).
#include <cstddef>
#include <cstdint>
#include <exception>

#include "datasets/byte_stream.h"
#include "datasets/dataset_builder.h"
#include "datasets/stl10.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    advcl::data::MemoryStream y(data, size, "fuzz_y.bin");
    advcl::data::read_stl10_labels(y);
  } catch (const std::exception&) {
  }
  try {
    advcl::data::DatasetSpec spec;
    spec.size = (size & 1) ? 32 : 0;
    advcl::data::DatasetBuilder b(spec, "stl10 fuzz", 3, 96, 96);
    advcl::data::MemoryStream x(data, size, "fuzz_X.bin");
    bool complete = false;
    advcl::data::read_stl10_images(x, b, complete);
    b.finish(advcl::data::stl10_class_names());
  } catch (const std::exception&) {
  }
  return 0;
}
