#include "datasets/jpeg_check.h"

#include <algorithm>

#include "engine/common.h"

namespace advcl::data {

void check_jpeg_huffman_tables(const uint8_t* d, size_t n, const std::string& name) {
  if (n < 2 || d[0] != 0xFF || d[1] != 0xD8) return;  // no SOI: not a JPEG
  size_t i = 2;
  while (i + 1 < n) {
    // Between segments (and inside entropy-coded scan data) everything up to
    // the next marker is skipped; 0xFF 0x00 is a stuffed data byte, 0xFF 0xFF
    // fill, RSTn / TEM markers have no length.
    if (d[i] != 0xFF) {
      ++i;
      continue;
    }
    const uint8_t m = d[i + 1];
    if (m == 0xFF) {
      ++i;
      continue;
    }
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      i += 2;
      continue;
    }
    if (m == 0xD9) return;  // EOI
    if (i + 4 > n) return;
    const size_t len = (size_t{d[i + 2]} << 8) | d[i + 3];
    if (m == 0xC4) {
      // One or more tables: class/id byte, 16 code counts, then the symbols.
      const size_t end = std::min(n, i + 2 + std::max<size_t>(len, 2));
      size_t p = i + 4;
      while (p < end) {
        size_t codes = 0;
        for (size_t k = 1; k <= 16; ++k) codes += p + k < n ? d[p + k] : 0;
        if (codes > 256)
          fail(name, ": corrupt JPEG: a Huffman table declares ", codes, " codes (at most 256) at byte ", p);
        p += 17 + codes;
      }
    }
    i += 2 + len;
  }
}

}  // namespace advcl::data
