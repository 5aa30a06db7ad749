// AtomicFile and the durable append: a failed write (here a file-size limit,
// which fails write() with EFBIG exactly as a full disk fails it with
// ENOSPC) throws naming the file and leaves the previous file byte for byte,
// with no temporary left behind.
#include "engine/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>

#include "engine/safetensors.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl;
using data::testing::error_of;
using data::testing::read_file;
using data::testing::TempDir;

namespace {

std::string read_text(const std::string& path) {
  auto b = read_file(path);
  return std::string(b.begin(), b.end());
}

// Every file in `dir`, by name.
std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// While alive, files may not grow past `bytes` (RLIMIT_FSIZE); SIGXFSZ is
// ignored so the write fails with EFBIG instead of killing the process.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

}  // namespace

TEST(AtomicFile, WritesAndReplacesLeavingNoTemporary) {
  TempDir t;
  write_file_atomically(t / "a.json", "first\n");
  EXPECT_EQ(read_text(t / "a.json"), "first\n");
  write_file_atomically(t / "a.json", "second\n");
  EXPECT_EQ(read_text(t / "a.json"), "second\n");
  EXPECT_EQ(listing(t.path()), std::vector<std::string>{"a.json"});
}

TEST(AtomicFile, FailedWriteKeepsThePreviousFile) {
  TempDir t;
  write_file_atomically(t / "run.json", "old contents\n");
  std::string msg;
  {
    FileSizeLimit limit(64);
    msg = error_of([&] { write_file_atomically(t / "run.json", std::string(4096, 'x')); });
  }
  EXPECT_NE(msg.find(t / "run.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("write failed"), std::string::npos) << msg;
  EXPECT_EQ(read_text(t / "run.json"), "old contents\n");
  EXPECT_EQ(listing(t.path()), std::vector<std::string>{"run.json"}) << "the temporary was left behind";
}

TEST(AtomicFile, EachWriterHasItsOwnTemporary) {
  // Two writers of one file at once (two runs on one folder): distinct
  // temporaries, and the file is whole whichever commits last.
  TempDir t;
  AtomicFile a(t / "last.safetensors"), b(t / "last.safetensors");
  EXPECT_NE(a.temp_path(), b.temp_path());
  a.write(std::string(1000, 'a'));
  b.write(std::string(2000, 'b'));
  b.commit();
  a.commit();
  EXPECT_EQ(read_text(t / "last.safetensors"), std::string(1000, 'a'));
  EXPECT_EQ(listing(t.path()), std::vector<std::string>{"last.safetensors"});
}

TEST(AtomicFile, AbandonedWriteRemovesItsTemporary) {
  TempDir t;
  write_file_atomically(t / "x", "kept");
  {
    AtomicFile f(t / "x");
    f.write("half of a new ");
  }  // e.g. an exception between two writes
  EXPECT_EQ(read_text(t / "x"), "kept");
  EXPECT_EQ(listing(t.path()), std::vector<std::string>{"x"});
}

TEST(AtomicFile, CheckWritableNamesTheOptionAndPath) {
  TempDir t;
  check_writable(t / "ok.json", "--json");
  EXPECT_TRUE(listing(t.path()).empty()) << "the probe must not leave a file";
  std::string msg = error_of([&] { check_writable(t / "no/such/folder/r.json", "--json"); });
  EXPECT_NE(msg.find("--json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no/such/folder/r.json"), std::string::npos) << msg;
  // A folder where a file is meant: found now, not when the rename fails.
  std::filesystem::create_directories(t / "out.json");
  msg = error_of([&] { check_writable(t / "out.json", "--json"); });
  EXPECT_NE(msg.find("is a folder"), std::string::npos) << msg;
}

TEST(AtomicFile, FailedAppendLeavesNoHalfLine) {
  TempDir t;
  const std::string log = t / "metrics.jsonl";
  append_durably(log, "{\"step\": 1}\n");
  std::string msg;
  {
    FileSizeLimit limit(20);
    msg = error_of([&] { append_durably(log, "{\"step\": 2, \"loss\": 1.25}\n"); });
  }
  EXPECT_NE(msg.find(log), std::string::npos) << msg;
  EXPECT_EQ(read_text(log), "{\"step\": 1}\n");
}

TEST(AtomicFile, FailedSafetensorsSaveKeepsTheOldCheckpointBitIdentical) {
  TempDir t;
  const std::string path = t / "last.safetensors";
  save_safetensors(path, {{"w", Tensor::from_vector<float>({1, 2, 3, 4}, {4})}}, {{"epoch", "1"}});
  const std::vector<uint8_t> before = read_file(path);
  std::vector<float> big(10000, 0.5f);
  std::string msg;
  {
    FileSizeLimit limit(static_cast<rlim_t>(before.size()));
    msg = error_of([&] {
      save_safetensors(path, {{"w", Tensor::from_vector<float>(big, {10000})}}, {{"epoch", "2"}});
    });
  }
  EXPECT_NE(msg.find("save_safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(load_safetensors(path).metadata.at("epoch"), "1");
  EXPECT_EQ(listing(t.path()), std::vector<std::string>{"last.safetensors"});
}
