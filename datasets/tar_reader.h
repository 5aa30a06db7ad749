// A minimal reader of (gzip-compressed) tar archives, enough to take the
// dataset files out of the official .tar.gz downloads without extracting
// them to disk. Reads ustar/GNU/POSIX headers: plain files, GNU long names
// ('L') and pax 'path' records; other entry types (directories, links) are
// skipped. Members are visited in archive order, each as a ByteStream.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "datasets/byte_stream.h"

namespace advcl::data {

class TarReader {
 public:
  explicit TarReader(const std::string& archive_path);
  // Reads an uncompressed tar from any byte source (tests/fuzz/ passes memory).
  explicit TarReader(std::unique_ptr<ByteStream> stream);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  // Moves to the next regular file; false at the end of the archive. The
  // previous member's unread bytes are skipped.
  bool next();
  // Path of the current member inside the archive, without a leading "./".
  const std::string& member_name() const { return member_; }
  uint64_t member_size() const { return size_; }
  // The current member's bytes; valid until next(). Named "archive:member".
  ByteStream& member();

  const std::string& archive_path() const { return path_; }

 private:
  class Member;
  void skip(uint64_t n, const std::string& what);
  std::string path_;
  std::unique_ptr<ByteStream> file_;
  std::unique_ptr<Member> member_stream_;
  std::string member_;
  uint64_t size_ = 0;
  uint64_t padded_left_ = 0;  // bytes of the current member + padding not yet consumed
};

// True for names the readers treat as gzip-compressed tar archives.
bool is_tar_archive_name(const std::string& path);

}  // namespace advcl::data
