// libFuzzer harness: CIFAR binary records (datasets/cifar.h). The first
// byte picks CIFAR-10 (even) or CIFAR-100 (odd); the rest is the file.
// Any input must either decode or throw advcl::Error; never crash or read
// out of bounds (ASan/UBSan watch that).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <vector>

#include "datasets/cifar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int classes = (data[0] & 1) ? 100 : 10;
  std::vector<uint8_t> file(data + 1, data + size);
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  try {
    advcl::data::decode_cifar_binary(file, classes, "fuzz.bin", images, labels);
  } catch (const std::exception&) {
    // Rejected input: the error path is what is being exercised.
  }
  return 0;
}
