#include "datasets/tar_reader.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/common.h"

namespace advcl::data {

// The current member: a window over the archive stream that ends at the
// member's size, so a reader can never run into the next header.
class TarReader::Member : public ByteStream {
 public:
  Member(TarReader& owner, std::string name, uint64_t size) : ByteStream(std::move(name)), owner_(owner), left_(size) {}
  size_t read_some(void* dst, size_t n) override {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, left_));
    if (want == 0) return 0;
    size_t r = owner_.file_->read_some(dst, want);
    if (r == 0) fail(owner_.path_, ": truncated archive: member ", name_, " ends early");
    left_ -= r;
    owner_.padded_left_ -= r;
    offset_ += r;
    return r;
  }

 private:
  TarReader& owner_;
  uint64_t left_;
};

namespace {

// Numeric header fields are octal ASCII, NUL/space terminated.
uint64_t parse_octal(const char* field, size_t len, const std::string& where) {
  if (static_cast<unsigned char>(field[0]) & 0x80)
    fail(where, ": tar member over 8 GiB (base-256 size field) is not supported");
  uint64_t v = 0;
  size_t i = 0;
  while (i < len && field[i] == ' ') ++i;
  for (; i < len && field[i] >= '0' && field[i] <= '7'; ++i) v = v * 8 + static_cast<uint64_t>(field[i] - '0');
  for (; i < len; ++i)
    if (field[i] != '\0' && field[i] != ' ') fail(where, ": not a tar archive (bad numeric header field)");
  return v;
}

std::string field_str(const char* field, size_t len) { return std::string(field, strnlen(field, len)); }

std::string strip_dot_slash(std::string s) {
  while (s.rfind("./", 0) == 0) s.erase(0, 2);
  return s;
}

// A pax extended header: records "<len> key=value\n"; we want only "path".
std::string pax_path(const std::vector<uint8_t>& data) {
  std::string text(data.begin(), data.end());
  size_t pos = 0;
  std::string path;
  while (pos < text.size()) {
    size_t sp = text.find(' ', pos);
    if (sp == std::string::npos) break;
    size_t len = std::strtoull(text.c_str() + pos, nullptr, 10);
    if (len == 0 || pos + len > text.size()) break;
    std::string rec = text.substr(sp + 1, pos + len - sp - 2);  // drop the trailing '\n'
    if (rec.rfind("path=", 0) == 0) path = rec.substr(5);
    pos += len;
  }
  return path;
}

}  // namespace

TarReader::TarReader(const std::string& archive_path)
    : path_(archive_path), file_(std::make_unique<FileStream>(archive_path)) {}
TarReader::TarReader(std::unique_ptr<ByteStream> stream) : path_(stream->name()), file_(std::move(stream)) {}
TarReader::~TarReader() = default;

void TarReader::skip(uint64_t n, const std::string& what) {
  std::vector<uint8_t> buf(1 << 16);
  while (n > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, buf.size()));
    file_->read_exact(buf.data(), want, what);
    n -= want;
  }
}

ByteStream& TarReader::member() {
  if (!member_stream_) fail(path_, ": TarReader::member() called with no current member");
  return *member_stream_;
}

bool TarReader::next() {
  member_stream_.reset();
  skip(padded_left_, "the rest of tar member " + member_);
  padded_left_ = 0;
  std::string long_name;
  for (;;) {
    char h[512];
    size_t got = file_->read_full(h, 512);
    if (got == 0) return false;  // some writers omit the two zero blocks
    if (got != 512) fail(path_, ": truncated tar archive (partial header at byte ", file_->offset() - got, ")");
    if (std::all_of(h, h + 512, [](char c) { return c == 0; })) return false;  // end-of-archive block
    // The checksum treats its own field as spaces; it catches non-tar input early.
    uint64_t want_sum = parse_octal(h + 148, 8, path_);
    uint64_t sum = 0;
    for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    if (sum != want_sum) fail(path_, ": not a tar archive (header checksum mismatch at byte ", file_->offset() - 512, ")");
    uint64_t size = parse_octal(h + 124, 12, path_);
    uint64_t padded = (size + 511) / 512 * 512;
    char type = h[156];
    std::string name = field_str(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0) {
      std::string prefix = field_str(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    if (type == 'L' || type == 'x') {  // the name of the next entry
      std::vector<uint8_t> data(static_cast<size_t>(size));
      file_->read_exact(data.data(), data.size(), "a tar long-name record");
      skip(padded - size, "tar padding");
      if (type == 'L') long_name = field_str(reinterpret_cast<const char*>(data.data()), data.size());
      else if (std::string p = pax_path(data); !p.empty()) long_name = p;
      continue;
    }
    if (!long_name.empty()) name = long_name;
    long_name.clear();
    if (type == '0' || type == '\0' || type == '7') {
      member_ = strip_dot_slash(name);
      size_ = size;
      padded_left_ = padded;
      member_stream_ = std::make_unique<Member>(*this, path_ + ":" + member_, size);
      return true;
    }
    skip(padded, "tar entry " + name);  // directories, links, global pax headers
  }
}

bool is_tar_archive_name(const std::string& path) {
  return ends_with_nocase(path, ".tar.gz") || ends_with_nocase(path, ".tgz") || ends_with_nocase(path, ".tar");
}

}  // namespace advcl::data
