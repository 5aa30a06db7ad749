// libFuzzer harness: the IDX (MNIST) reader (datasets/idx.h). The input is
// split in two files: the first two bytes (little-endian) give the length of
// the labels file, which follows; the images file is the rest.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>

#include "datasets/byte_stream.h"
#include "datasets/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t label_len = std::min<size_t>(size - 2, data[0] | (data[1] << 8));
  advcl::data::MemoryStream labels(data + 2, label_len, "fuzz-labels-idx1-ubyte");
  advcl::data::MemoryStream images(data + 2 + label_len, size - 2 - label_len, "fuzz-images-idx3-ubyte");
  advcl::data::DatasetSpec spec;
  spec.size = 32;  // the padding/resizing fit runs too, as in a real load
  try {
    advcl::data::decode_idx(images, labels, spec, (size & 1) != 0);
  } catch (const std::exception&) {
  }
  return 0;
}
