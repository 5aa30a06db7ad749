// The run folder: its lock (one writer at a time, the holder named, released
// when the holder ends; a killed holder is tested with the real binary in
// reliability_cli_test.cpp), whole-or-nothing files, and the steps line of
// the start-up summary.
#include "advcl/run/run_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "engine/parse_number.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl;
using data::testing::error_of;
using data::testing::TempDir;

TEST(RunDirLock, SecondWriterIsRefusedNamingTheHolder) {
  TempDir t;
  std::string msg;
  {
    cli::RunDir first(t / "run");
    msg = error_of([&] { cli::RunDir second(t / "run"); });
    EXPECT_NE(msg.find("in use by another advcl process"), std::string::npos) << msg;
    EXPECT_NE(msg.find("PID " + std::to_string(::getpid())), std::string::npos) << msg;
    EXPECT_NE(msg.find(t / "run"), std::string::npos) << msg;
  }
  // Released with the first RunDir: the folder is free again.
  EXPECT_EQ(error_of([&] { cli::RunDir again(t / "run"); }), "");
}

TEST(RunDirFiles, WriteTextReplacesWholeAndLeavesNoTemporary) {
  TempDir t;
  cli::RunDir dir(t / "run");
  dir.write_text("run.json", "{\"a\": 1}\n");
  dir.write_text("run.json", "{\"a\": 2}\n");
  auto b = data::testing::read_file(t / "run/run.json");
  EXPECT_EQ(std::string(b.begin(), b.end()), "{\"a\": 2}\n");
  for (const auto& e : std::filesystem::directory_iterator(t / "run"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(StepsText, SaysWhatTheLoaderReallyDoes) {
  EXPECT_EQ(cli::steps_text(64, 16, 4), "4 steps of 16 images");
  // --batch-size 100 on 64 images: one step of 64, not "steps of 100 images".
  EXPECT_EQ(cli::steps_text(64, 100, 1), "1 step of 64 images (--batch-size 100 is larger than the 64 images)");
  EXPECT_EQ(cli::steps_text(70, 16, 5), "5 steps of 16 images (the last has 6)");
  EXPECT_EQ(cli::steps_text(70, 16, 4), "4 steps of 16 images (6 images left out of each epoch)");
}

TEST(ParseInt64, WholeTextOrNothing) {
  int64_t v = 0;
  EXPECT_TRUE(parse_int64("42", &v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(parse_int64("-7", &v));
  EXPECT_EQ(v, -7);
  for (const char* bad : {"", "abc", "12abc", " 3", "3 ", "-", "99999999999999999999", "1e3", "0x10"})
    EXPECT_FALSE(parse_int64(bad, &v)) << bad;
  std::string msg = error_of([] { metadata_int("ck.safetensors", "loader_batch", "abc"); });
  EXPECT_NE(msg.find("ck.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'loader_batch' is 'abc', not an integer"), std::string::npos) << msg;
}
