// Helpers for the dataset tests: a temporary folder, writers for small files
// in the official formats (plain, gzip, tar.gz), and a deterministic pixel
// pattern to check round trips against.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "engine/common.h"

namespace advcl::data::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/advcl_datasets_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline void make_dirs(const std::string& dir) { std::filesystem::create_directories(dir); }

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  make_dirs(std::filesystem::path(path).parent_path().string());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

inline void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  make_dirs(std::filesystem::path(path).parent_path().string());
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_TRUE(f != nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(f);
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// `tar czf archive -C dir members...` with the system's GNU tar, so the
// reader is tested on archives a real tar wrote.
inline void make_tar_gz(const std::string& archive, const std::string& dir, const std::string& members) {
  std::string cmd = "tar czf '" + archive + "' -C '" + dir + "' " + members;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// The test pattern: byte j of image i.
inline uint8_t pattern(int64_t i, int64_t j) { return static_cast<uint8_t>((7 * i + 13 * j) % 256); }

// Runs f and returns the advcl::Error message ("" if nothing was thrown).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const advcl::Error& e) {
    return e.what();
  }
  return "";
}

// Asserts that f throws an advcl::Error whose message contains every needle.
#define EXPECT_ERROR_MENTIONS(stmt, ...)                                                 \
  do {                                                                                   \
    std::string msg_ = ::advcl::data::testing::error_of([&] { stmt; });                  \
    EXPECT_FALSE(msg_.empty()) << "no advcl::Error from: " #stmt;                        \
    for (const std::string& needle_ : std::vector<std::string>{__VA_ARGS__})             \
      EXPECT_NE(msg_.find(needle_), std::string::npos) << "message lacks '" << needle_ \
                                                        << "': " << msg_;               \
  } while (0)

// Where the committed golden files are: next to this source, found from the
// compile-time path (relative to the repo root) or from the test binary
// (build/<variant>/bin/advcl_tests).
inline std::string golden_path(const std::string& name) {
  std::string here = __FILE__;
  std::string dir = here.substr(0, here.find_last_of('/'));
  std::string p = dir + "/golden/" + name;
  if (std::filesystem::exists(p)) return p;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto root = exe.parent_path().parent_path().parent_path().parent_path();
    auto q = root / "tests/datasets/golden" / name;
    if (std::filesystem::exists(q)) return q.string();
  }
  return p;
}

// A big-endian 32-bit field (IDX headers).
inline std::vector<uint8_t> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}

// `prefix`-images-idx3-ubyte and -labels-idx1-ubyte in `dir` with n 8x8
// images: class k = i % 4 has brightness 30 + 60 k plus a fixed pixel texture,
// so a linear probe learns it in a few steps (the CLI tests' tiny MNIST).
inline void write_idx_split(const std::string& dir, const std::string& prefix, int n) {
  std::vector<uint8_t> im = be32(0x803), lb = be32(0x801);
  for (uint32_t v : {uint32_t(n), 8u, 8u}) {
    auto b = be32(v);
    im.insert(im.end(), b.begin(), b.end());
  }
  auto b = be32(static_cast<uint32_t>(n));
  lb.insert(lb.end(), b.begin(), b.end());
  for (int i = 0; i < n; ++i) {
    int k = i % 4;
    lb.push_back(static_cast<uint8_t>(k));
    for (int j = 0; j < 64; ++j) im.push_back(static_cast<uint8_t>(30 + 60 * k + (7 * i + 13 * j) % 21));
  }
  write_file(dir + "/" + prefix + "-images-idx3-ubyte", im);
  write_file(dir + "/" + prefix + "-labels-idx1-ubyte", lb);
}

}  // namespace advcl::data::testing
