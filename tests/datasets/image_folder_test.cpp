// Image folders (torchvision ImageFolder layout) through stb_image; the test
// writes real PNG/BMP files with stb_image_write and reads a committed JPEG.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "datasets/stb_write.h"

#include "datasets/image_folder.h"
#include "datasets/load_dataset.h"
#include "tests/datasets/dataset_test_util.h"

namespace advcl::data {
namespace {

using testing::TempDir;

// An h x w RGB image (HWC for stb) from image index i of the test pattern,
// with CHW pixel (c, y, x) = pattern(i, (c*h + y)*w + x).
std::vector<uint8_t> hwc(int64_t i, int h, int w) {
  std::vector<uint8_t> v(static_cast<size_t>(h * w * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) v[(y * w + x) * 3 + c] = testing::pattern(i, (c * h + y) * w + x);
  return v;
}

void png(const std::string& path, int64_t i, int h = 8, int w = 8) {
  testing::make_dirs(std::filesystem::path(path).parent_path().string());
  ASSERT_TRUE(stbi_write_png(path.c_str(), w, h, 3, hwc(i, h, w).data(), w * 3)) << path;
}

TEST(ImageFolder, ClassesSortedByNameLikeTorchvision) {
  TempDir t;
  png(t / "zebra/b.png", 0);
  png(t / "zebra/a.png", 1);
  png(t / "Apple/x.PNG", 2);  // upper case sorts first, as Python's sorted()
  png(t / "cat/only.png", 3);
  ASSERT_TRUE(stbi_write_bmp((t / "cat/second.bmp").c_str(), 8, 8, 3, hwc(4, 8, 8).data()));
  testing::write_file(t / "cat/readme.txt", {'h', 'i'});  // not an image: ignored
  DatasetSpec s;
  s.root = t.path();
  EXPECT_EQ(detect_format(t.path(), "train"), "folder");
  ImageDataset ds = load_dataset(s);
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"Apple", "cat", "zebra"}));
  EXPECT_EQ(ds.labels, (std::vector<int64_t>{0, 1, 1, 2, 2}));
  ASSERT_EQ(ds.n, 5);
  EXPECT_EQ(ds.channels, 3);
  EXPECT_EQ(ds.height, 8);
  const int64_t expect_source[5] = {2, 3, 4, 1, 0};  // files sorted within a class
  for (int64_t k = 0; k < 5; ++k)
    for (int64_t j = 0; j < 3 * 64; ++j)
      ASSERT_EQ(ds.image(k)[j], testing::pattern(expect_source[k], j)) << "image " << k << " byte " << j;
}

TEST(ImageFolder, SplitFolderResizeAndGrey) {
  TempDir t;
  png(t / "train/a/1.png", 0, 16, 16);
  png(t / "train/b/1.png", 1, 8, 12);  // another size: needs --size
  // A JPEG from a real encoder (PIL; golden/make_jpeg.py). stb_image_write's
  // own JPEG encoder is not used: it trips UBSan in `make sanitize`.
  testing::write_file(t / "train/b/2.jpg", testing::read_file(testing::golden_path("tiny_gradient.jpg")));
  DatasetSpec s;
  s.root = t.path();
  s.split = "train";
  EXPECT_ERROR_MENTIONS(load_dataset(s), t / "train/b/1.png", "8x12", "--size");
  s.size = 4;
  s.channels = 1;
  ImageDataset ds = load_dataset(s);
  EXPECT_EQ(ds.n, 3);
  EXPECT_EQ(ds.channels, 1);
  EXPECT_EQ(ds.height, 4);
  EXPECT_EQ(ds.width, 4);
  EXPECT_EQ(ds.labels, (std::vector<int64_t>{0, 1, 1}));
}

TEST(ImageFolder, DecodesARealJpeg) {
  int64_t h = 0, w = 0;
  std::string path = testing::golden_path("tiny_gradient.jpg");
  std::vector<uint8_t> chw = decode_image_rgb(path, h, w);
  ASSERT_EQ(h, 12);
  ASSERT_EQ(w, 16);
  // Pixel (x, y) was (16x, 20y, 128) before lossy compression.
  int worst = 0;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const int want[3] = {int(16 * x), int(20 * y), 128};
      for (int64_t c = 0; c < 3; ++c) worst = std::max(worst, std::abs(chw[(c * h + y) * w + x] - want[c]));
    }
  EXPECT_LE(worst, 12);
}

TEST(ImageFolder, BadImagesNameTheFile) {
  TempDir t;
  png(t / "a/good.png", 0);
  testing::write_file(t / "a/broken.png", {0x89, 'P', 'N', 'G', 1, 2, 3});
  DatasetSpec s;
  s.root = t.path();
  s.format = "folder";
  EXPECT_ERROR_MENTIONS(load_dataset(s), t / "a/broken.png", "cannot decode");
  TempDir empty;
  testing::make_dirs(empty / "a");
  s.root = empty.path();
  EXPECT_ERROR_MENTIONS(load_dataset(s), "no .png");
}

}  // namespace
}  // namespace advcl::data
