// The guard in front of stb_image's JPEG decoder (datasets/jpeg_check.h):
// a Huffman table with more than 256 codes is refused before stb parses it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "datasets/image_folder.h"
#include "datasets/jpeg_check.h"

namespace advcl::data {
namespace {

// SOI, an APP0 segment to walk over, then a DHT whose 16 counts are `count` each.
std::vector<uint8_t> jpeg_with_dht(uint8_t count) {
  std::vector<uint8_t> j = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 'x', 'y', 0xFF, 0xC4, 0x00, 0x13, 0x00};
  for (int k = 0; k < 16; ++k) j.push_back(count);
  for (int k = 0; k < 16 * count; ++k) j.push_back(static_cast<uint8_t>(k));
  j.push_back(0xFF);
  j.push_back(0xD9);
  return j;
}

TEST(JpegCheck, RefusesHuffmanTablesOver256Codes) {
  std::vector<uint8_t> bad = jpeg_with_dht(17);  // 272 codes
  try {
    check_jpeg_huffman_tables(bad.data(), bad.size(), "evil.jpg");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("evil.jpg: corrupt JPEG: a Huffman table declares 272 codes"),
              std::string::npos)
        << e.what();
  }
  int64_t h = 0, w = 0;
  EXPECT_THROW(decode_image_rgb(bad.data(), bad.size(), "evil.jpg", h, w), std::exception);
}

TEST(JpegCheck, LetsOtherDataThrough) {
  std::vector<uint8_t> ok = jpeg_with_dht(16);  // exactly 256 codes
  EXPECT_NO_THROW(check_jpeg_huffman_tables(ok.data(), ok.size(), "ok.jpg"));
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', 0xFF, 0xC4, 0xFF, 0xFF};
  EXPECT_NO_THROW(check_jpeg_huffman_tables(png.data(), png.size(), "x.png"));
  EXPECT_NO_THROW(check_jpeg_huffman_tables(nullptr, 0, "empty"));
}

}  // namespace
}  // namespace advcl::data
