// A PNG whose chunk CRC does not match is refused (stb_image alone decodes
// it), and an image folder with an empty class folder is refused naming it.
#include "datasets/png_check.h"

#include <gtest/gtest.h>

#include "datasets/image_folder.h"
#include "datasets/image_grid.h"
#include "datasets/load_dataset.h"
#include "tests/datasets/dataset_test_util.h"

namespace advcl::data {
namespace {

using testing::error_of;
using testing::TempDir;

void write_test_png(const std::string& path) {
  RgbImage img;
  img.height = 4;
  img.width = 5;
  img.rgb.resize(4 * 5 * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>(17 * i);
  testing::make_dirs(std::filesystem::path(path).parent_path().string());
  write_png(img, path);
}

TEST(PngCheck, ValidPngDecodes) {
  TempDir t;
  write_test_png(t / "ok.png");
  int64_t h = 0, w = 0;
  decode_image_rgb(t / "ok.png", h, w);
  EXPECT_EQ(h, 4);
  EXPECT_EQ(w, 5);
}

TEST(PngCheck, BadCrcIsRefusedNamingFileAndChunk) {
  TempDir t;
  write_test_png(t / "bad.png");
  auto bytes = testing::read_file(t / "bad.png");
  // Signature (8), IHDR length (4), type (4), data (13): the next 4 bytes are
  // IHDR's CRC, which stb_image never looks at.
  bytes[8 + 4 + 4 + 13] ^= 0x01;
  testing::write_file(t / "bad.png", bytes);
  int64_t h = 0, w = 0;
  std::string msg = error_of([&] { decode_image_rgb(t / "bad.png", h, w); });
  EXPECT_NE(msg.find(t / "bad.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("damaged PNG"), std::string::npos) << msg;
  EXPECT_NE(msg.find("IHDR"), std::string::npos) << msg;
}

TEST(PngCheck, TruncatedPngIsRefused) {
  TempDir t;
  write_test_png(t / "cut.png");
  auto bytes = testing::read_file(t / "cut.png");
  bytes.resize(bytes.size() - 12);  // without IEND
  std::string msg = error_of([&] { check_png_chunks(bytes.data(), bytes.size(), "cut.png"); });
  EXPECT_NE(msg.find("truncated PNG"), std::string::npos) << msg;
}

TEST(PngCheck, OtherFormatsPassThrough) {
  const uint8_t bmp[] = {'B', 'M', 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(error_of([&] { check_png_chunks(bmp, sizeof bmp, "x.bmp"); }), "");
}

TEST(ImageFolderClasses, EmptyClassFolderIsRefusedNamingIt) {
  TempDir t;
  write_test_png(t / "cat/a.png");
  write_test_png(t / "dog/b.png");
  testing::make_dirs(t / "emu");
  DatasetSpec s;
  s.root = t.path();
  s.format = "folder";
  std::string msg = error_of([&] { load_dataset(s); });
  EXPECT_NE(msg.find("'emu'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hold no"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("'cat'"), std::string::npos) << msg;
}

}  // namespace
}  // namespace advcl::data
