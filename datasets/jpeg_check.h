// A guard in front of stb_image's JPEG decoder. Debian's stb_image
// (libstb-dev 0.0~git20220908) does not check that a Huffman table (DHT
// segment) declares at most 256 codes; a corrupt or hostile JPEG with more
// writes past the table inside the decoder's state (found by tests/fuzz/fuzz_image;
// upstream stb_image 2.28 added the check). This walks the JPEG's segments
// the way the decoder does and rejects such tables before stb sees them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace advcl::data {

// Throws naming `name` when the data is a JPEG holding a Huffman table with
// more than 256 codes, or a table selector stb would reject anyway; returns
// for anything else (other formats pass through untouched).
void check_jpeg_huffman_tables(const uint8_t* data, size_t size, const std::string& name);

}  // namespace advcl::data
