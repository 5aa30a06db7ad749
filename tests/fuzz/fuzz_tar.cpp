// libFuzzer harness: the tar reader (datasets/tar_reader.h) over an
// uncompressed archive in memory: every member is visited and, on odd-sized
// inputs, read to its end (even sizes exercise skipping unread members).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>

#include "datasets/byte_stream.h"
#include "datasets/tar_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    advcl::data::TarReader tar(std::make_unique<advcl::data::MemoryStream>(data, size, "fuzz.tar"));
    const bool read_members = (size & 1) != 0;
    // Each member takes at least one 512-byte header, so this bound is never
    // the reason a well-formed input stops; it guards against a reader loop.
    for (size_t k = 0; k <= size / 512 && tar.next(); ++k)
      if (read_members) tar.member().read_rest();
  } catch (const std::exception&) {
  }
  return 0;
}
