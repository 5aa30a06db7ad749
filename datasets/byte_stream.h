// Sequential byte sources for the dataset readers: a file (gzip-compressed or
// not, zlib's gzread passes plain files through unchanged) or one member of a
// tar archive. Every read that comes up short throws an advcl::Error naming
// the file, what was being read and at which byte offset, so a truncated
// download is reported instead of being read as garbage.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace advcl::data {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads up to n bytes; returns how many (0 only at the end of the data).
  virtual size_t read_some(void* dst, size_t n) = 0;
  // The name used in error messages ("path" or "archive.tar.gz:member").
  const std::string& name() const { return name_; }
  // Bytes consumed so far.
  uint64_t offset() const { return offset_; }

  // Reads exactly n bytes or throws "<name>: truncated: ... <what> ...".
  void read_exact(void* dst, size_t n, const std::string& what);
  // Reads up to n bytes, stopping only at the end of the data.
  size_t read_full(void* dst, size_t n);
  // Everything that is left.
  std::vector<uint8_t> read_rest();

 protected:
  explicit ByteStream(std::string name) : name_(std::move(name)) {}
  std::string name_;
  uint64_t offset_ = 0;
};

// A file on disk, decompressed on the fly when it is gzip data.
class FileStream : public ByteStream {
 public:
  explicit FileStream(const std::string& path);
  ~FileStream() override;
  FileStream(const FileStream&) = delete;
  FileStream& operator=(const FileStream&) = delete;
  size_t read_some(void* dst, size_t n) override;

 private:
  void* gz_ = nullptr;  // gzFile, kept opaque so zlib.h stays out of headers
};

// Bytes already in memory (borrowed; they must outlive the stream). The
// fuzz harnesses (tests/fuzz/) feed the parsers through this.
class MemoryStream : public ByteStream {
 public:
  MemoryStream(const uint8_t* data, size_t size, std::string name) : ByteStream(std::move(name)), p_(data), n_(size) {}
  size_t read_some(void* dst, size_t n) override;

 private:
  const uint8_t* p_;
  size_t n_;
};

// Small file-system helpers (std::filesystem, without exceptions).
bool path_is_file(const std::string& path);
bool path_is_dir(const std::string& path);
std::string path_join(const std::string& a, const std::string& b);
// True when the name ends with `suffix` (ASCII case-insensitive).
bool ends_with_nocase(const std::string& name, const std::string& suffix);

}  // namespace advcl::data
