#include "datasets/byte_stream.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <limits>

#include "engine/common.h"

namespace advcl::data {

void ByteStream::read_exact(void* dst, size_t n, const std::string& what) {
  uint64_t start = offset_;
  size_t got = read_full(dst, n);
  if (got != n)
    fail(name_, ": truncated: expected ", n, " bytes of ", what, " at byte offset ", start, " but the data ends after ",
         got);
}

size_t ByteStream::read_full(void* dst, size_t n) {
  size_t got = 0;
  auto* p = static_cast<uint8_t*>(dst);
  while (got < n) {
    size_t r = read_some(p + got, n - got);
    if (r == 0) break;
    got += r;
  }
  return got;
}

std::vector<uint8_t> ByteStream::read_rest() {
  std::vector<uint8_t> out;
  size_t chunk = 1 << 20;
  for (;;) {
    size_t old = out.size();
    out.resize(old + chunk);
    size_t r = read_full(out.data() + old, chunk);
    out.resize(old + r);
    if (r < chunk) break;
  }
  return out;
}

FileStream::FileStream(const std::string& path) : ByteStream(path) {
  if (path_is_dir(path)) fail(path, ": is a directory, expected a data file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(path, ": cannot open (", path_is_file(path) ? "permission denied?" : "no such file", ")");
  // A bigger buffer than zlib's 8 KiB default: these files are read once, start to end.
  gzbuffer(f, 1 << 18);
  gz_ = f;
}

FileStream::~FileStream() {
  if (gz_) gzclose(static_cast<gzFile>(gz_));
}

size_t FileStream::read_some(void* dst, size_t n) {
  // gzread takes an unsigned count; read large requests in pieces.
  unsigned want = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
  int r = gzread(static_cast<gzFile>(gz_), dst, want);
  if (r < 0) {
    int code = 0;
    const char* msg = gzerror(static_cast<gzFile>(gz_), &code);
    fail(name_, ": corrupt gzip data near byte ", offset_, " (zlib: ", msg ? msg : "unknown error", ")");
  }
  if (r == 0) {
    // gzread returns 0 both at a clean end and when a gzip member is cut
    // short; zlib reports the latter as Z_BUF_ERROR.
    int code = 0;
    gzerror(static_cast<gzFile>(gz_), &code);
    if (code == Z_BUF_ERROR) fail(name_, ": truncated gzip data (the compressed stream ends early)");
  }
  offset_ += static_cast<uint64_t>(r);
  return static_cast<size_t>(r);
}

size_t MemoryStream::read_some(void* dst, size_t n) {
  size_t r = std::min<size_t>(n, n_ - offset_);
  if (r) std::copy(p_ + offset_, p_ + offset_ + r, static_cast<uint8_t*>(dst));
  offset_ += r;
  return r;
}

bool path_is_file(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

bool path_is_dir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

bool ends_with_nocase(const std::string& name, const std::string& suffix) {
  if (suffix.size() > name.size()) return false;
  return std::equal(suffix.rbegin(), suffix.rend(), name.rbegin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
}

}  // namespace advcl::data
