#include "datasets/png_check.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>

#include "engine/common.h"

namespace advcl::data {

namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The chunk type for a message: four letters, or hex when not printable.
std::string type_text(const uint8_t* t) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    if (t[i] >= 0x20 && t[i] < 0x7f) {
      s += static_cast<char>(t[i]);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", t[i]);
      s += hex;
    }
  }
  return s;
}

}  // namespace

void check_png_chunks(const uint8_t* data, size_t size, const std::string& name) {
  if (size < sizeof kSignature || std::memcmp(data, kSignature, sizeof kSignature) != 0) return;
  size_t at = sizeof kSignature;
  for (;;) {
    if (size - at < 12)
      fail(name, ": truncated PNG: the chunk at byte ", at, " has no room for its length, type and CRC (", size,
           " bytes in all)");
    const uint32_t len = be32(data + at);
    const uint8_t* type = data + at + 4;
    // 2^31 - 1 is the format's limit on a chunk's length.
    if (len > 0x7fffffffu || len > size - at - 12)
      fail(name, ": truncated PNG: chunk '", type_text(type), "' at byte ", at, " declares ", len,
           " bytes, past the end of the file (", size, " bytes)");
    const uint32_t stored = be32(type + 4 + len);
    const uint32_t actual =
        static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(type), static_cast<uInt>(len) + 4));
    if (stored != actual) {
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%08x, computed 0x%08x", stored, actual);
      fail(name, ": damaged PNG: chunk '", type_text(type), "' at byte ", at, " has CRC ", hex,
           " (the file was corrupted; re-download or re-export it)");
    }
    at += 12 + len;
    if (std::memcmp(type, "IEND", 4) == 0) return;
  }
}

}  // namespace advcl::data
