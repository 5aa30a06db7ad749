// libFuzzer harness: image decoding for image folders (PNG, JPEG, BMP
// through stb_image; datasets/image_folder.h).
#include <cstddef>
#include <cstdint>
#include <exception>

#include "datasets/image_folder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    int64_t h = 0, w = 0;
    advcl::data::decode_image_rgb(data, size, "fuzz.img", h, w);
  } catch (const std::exception&) {
  }
  return 0;
}
