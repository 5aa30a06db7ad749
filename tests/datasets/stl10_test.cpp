// STL-10 binary: column-major images, 1-based labels, splits, resizing,
// archives and errors.
#include <gtest/gtest.h>

#include "datasets/load_dataset.h"
#include "datasets/stl10.h"
#include "tests/datasets/dataset_test_util.h"

namespace advcl::data {
namespace {

using testing::pattern;
using testing::TempDir;
using testing::write_file;

constexpr int64_t kS = 96, kBytes = 3 * 96 * 96;

// Images first..first+n-1 whose logical CHW pixel (c, y, x) is
// pattern(i, (c*96 + y)*96 + x), written in the file's column-major order.
std::vector<uint8_t> stl_images(int64_t first, int64_t n) {
  std::vector<uint8_t> out(static_cast<size_t>(n * kBytes));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < kS; ++y)
        for (int64_t x = 0; x < kS; ++x)
          out[i * kBytes + (c * kS + x) * kS + y] = pattern(first + i, (c * kS + y) * kS + x);
  return out;
}

void write_stl(const std::string& dir) {
  write_file(dir + "/train_X.bin", stl_images(0, 3));
  write_file(dir + "/train_y.bin", {1, 10, 4});
  write_file(dir + "/test_X.bin", stl_images(10, 2));
  write_file(dir + "/test_y.bin", {2, 3});
  write_file(dir + "/unlabeled_X.bin", stl_images(20, 2));
}

DatasetSpec spec_for(const std::string& root, const std::string& split) {
  DatasetSpec s;
  s.root = root;
  s.split = split;
  return s;
}

TEST(Stl10, ColumnMajorImagesAndOneBasedLabels) {
  TempDir t;
  write_stl(t / "stl10_binary");
  ImageDataset ds = load_dataset(spec_for(t.path(), "train"));
  ASSERT_EQ(ds.n, 3);
  EXPECT_EQ(ds.channels, 3);
  EXPECT_EQ(ds.height, 96);
  EXPECT_EQ(ds.width, 96);
  EXPECT_EQ(ds.labels, (std::vector<int64_t>{0, 9, 3}));
  EXPECT_EQ(ds.class_names[9], "truck");
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < kBytes; ++j) ASSERT_EQ(ds.image(i)[j], pattern(i, j)) << i << " " << j;
  // A pixel off the diagonal distinguishes row- from column-major.
  EXPECT_NE(pattern(0, 1), pattern(0, 96));

  ImageDataset test = load_dataset(spec_for(t / "stl10_binary", "test"));
  EXPECT_EQ(test.labels, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(test.image(1)[5], pattern(11, 5));
}

TEST(Stl10, UnlabeledSplitsAndResize) {
  TempDir t;
  write_stl(t.path());
  ImageDataset un = load_dataset(spec_for(t.path(), "unlabeled"));
  EXPECT_EQ(un.labels, (std::vector<int64_t>{-1, -1}));
  EXPECT_NE(un.describe().find("2 unlabelled"), std::string::npos) << un.describe();

  DatasetSpec s = spec_for(t.path(), "train+unlabeled");
  s.size = 32;
  ImageDataset both = load_dataset(s);
  ASSERT_EQ(both.n, 5);
  EXPECT_EQ(both.labels, (std::vector<int64_t>{0, 9, 3, -1, -1}));
  EXPECT_EQ(both.height, 32);
  EXPECT_EQ(both.width, 32);
  EXPECT_EQ(static_cast<int64_t>(both.images.size()), 5 * 3 * 32 * 32);
  EXPECT_NE(both.notes.find("resized bilinear 96x96 -> 32x32"), std::string::npos) << both.notes;

  s.split = "unlabeled";
  s.limit = 1;  // stops reading early
  EXPECT_EQ(load_dataset(s).n, 1);
}

TEST(Stl10, OfficialArchive) {
  TempDir src, t;
  write_stl(src / "stl10_binary");
  testing::make_tar_gz(t / "stl10_binary.tar.gz", src.path(), "stl10_binary");
  ImageDataset ds = load_dataset(spec_for(t.path(), "train+unlabeled"));
  EXPECT_EQ(ds.labels, (std::vector<int64_t>{0, 9, 3, -1, -1}));
  EXPECT_EQ(ds.image(4)[7], pattern(21, 7));
}

TEST(Stl10, BadFilesNameTheFile) {
  TempDir t;
  write_stl(t.path());
  write_file(t / "train_y.bin", {1, 11, 4});
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path(), "train")), t / "train_y.bin", "11", "1..10");
  write_file(t / "train_y.bin", {1, 2});
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path(), "train")), t / "train_y.bin", "2 labels", "3 images");
  auto x = stl_images(0, 2);
  x.resize(x.size() - 5);
  write_file(t / "test_X.bin", x);
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path(), "test")), t / "test_X.bin", "truncated record", "image 1");
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path(), "validation")), "--split", "validation");
}

}  // namespace
}  // namespace advcl::data
