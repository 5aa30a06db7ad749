// A guard in front of stb_image's PNG decoder, which ignores the CRC-32 that
// every PNG chunk carries: a PNG damaged in transit or on disk decoded to
// wrong pixels without a word. This walks the chunks (length, type, data,
// CRC of type + data) up to IEND and checks each CRC, so a damaged image is
// an error naming the file and the chunk.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace advcl::data {

// Throws naming `name` when the data is a PNG (by its 8-byte signature) with
// a chunk whose CRC does not match, or chunks running past the end of the
// data, or no IEND chunk; returns for anything else (other formats pass
// through untouched).
void check_png_chunks(const uint8_t* data, size_t size, const std::string& name);

}  // namespace advcl::data
