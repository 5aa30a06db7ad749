// MNIST / Fashion-MNIST IDX files, gzipped or not, and the real
// Fashion-MNIST on this machine when present.
#include <gtest/gtest.h>

#include "datasets/idx.h"
#include "datasets/load_dataset.h"
#include "tests/datasets/dataset_test_util.h"

namespace advcl::data {
namespace {

using testing::TempDir;

std::vector<uint8_t> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}

std::vector<uint8_t> idx_images(int n) {
  std::vector<uint8_t> out = be32(0x803);
  for (uint32_t v : {uint32_t(n), 28u, 28u}) {
    auto b = be32(v);
    out.insert(out.end(), b.begin(), b.end());
  }
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < 784; ++j) out.push_back(testing::pattern(i, j));
  return out;
}

std::vector<uint8_t> idx_labels(const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> out = be32(0x801);
  auto b = be32(static_cast<uint32_t>(labels.size()));
  out.insert(out.end(), b.begin(), b.end());
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

TEST(IdxDataset, GzippedAndPlainFilesPaddedOrResized) {
  TempDir t;
  testing::write_gz(t / "fashion/train-images-idx3-ubyte.gz", idx_images(3));
  testing::write_gz(t / "fashion/train-labels-idx1-ubyte.gz", idx_labels({9, 0, 4}));
  testing::write_file(t / "digits/raw/t10k-images-idx3-ubyte", idx_images(2));
  testing::write_file(t / "digits/raw/t10k-labels-idx1-ubyte", idx_labels({7, 1}));

  DatasetSpec s;
  s.root = t / "fashion";
  ImageDataset native = load_dataset(s);
  EXPECT_EQ(native.name, "fashion-mnist train");
  EXPECT_EQ(native.class_names[9], "Ankle boot");
  EXPECT_EQ(native.labels, (std::vector<int64_t>{9, 0, 4}));
  EXPECT_EQ(native.channels, 1);
  EXPECT_EQ(native.height, 28);
  EXPECT_EQ(native.image(2)[100], testing::pattern(2, 100));

  s.size = 32;
  s.channels = 3;
  ImageDataset padded = load_dataset(s);
  EXPECT_EQ(padded.channels, 3);
  EXPECT_EQ(padded.height, 32);
  // Pixel (y, x) of the 28x28 image lands at (y+2, x+2) in every channel.
  EXPECT_EQ(padded.image(1)[2 * 1024 + (2 + 3) * 32 + 2 + 4], testing::pattern(1, 3 * 28 + 4));
  EXPECT_EQ(padded.image(1)[0], 0);
  EXPECT_NE(padded.describe().find("zero-padded 28x28 -> 32x32"), std::string::npos) << padded.describe();

  s.fit = FitMode::Resize;
  s.channels = 1;
  ImageDataset resized = load_dataset(s);
  EXPECT_EQ(resized.channels, 1);
  EXPECT_NE(resized.describe().find("resized"), std::string::npos) << resized.describe();

  DatasetSpec d;
  d.root = t / "digits";
  d.split = "test";
  ImageDataset digits = load_dataset(d);  // torchvision's root/raw layout, uncompressed
  EXPECT_EQ(digits.name, "mnist test");
  EXPECT_EQ(digits.class_names[7], "7");
  EXPECT_EQ(digits.labels, (std::vector<int64_t>{7, 1}));
}

TEST(IdxDataset, BadFilesNameTheFile) {
  TempDir t;
  testing::write_file(t / "train-images-idx3-ubyte", idx_images(2));
  testing::write_file(t / "train-labels-idx1-ubyte", idx_labels({1, 12}));
  DatasetSpec s;
  s.root = t.path();
  s.format = "mnist";
  EXPECT_ERROR_MENTIONS(load_dataset(s), t / "train-labels-idx1-ubyte", "label 1 is 12");

  testing::write_file(t / "train-labels-idx1-ubyte", idx_images(2));  // images where labels belong
  EXPECT_ERROR_MENTIONS(load_dataset(s), t / "train-labels-idx1-ubyte", "bad magic 0x00000803");

  auto cut = idx_images(2);
  cut.resize(cut.size() - 10);
  testing::write_file(t / "train-images-idx3-ubyte", cut);
  testing::write_file(t / "train-labels-idx1-ubyte", idx_labels({1, 2}));
  EXPECT_ERROR_MENTIONS(load_dataset(s), t / "train-images-idx3-ubyte", "truncated", "image 1");

  testing::write_file(t / "train-labels-idx1-ubyte", idx_labels({1, 2, 3}));
  testing::write_file(t / "train-images-idx3-ubyte", idx_images(2));
  EXPECT_ERROR_MENTIONS(load_dataset(s), "2 images", "3 labels");

  // A gzip file cut short.
  testing::write_gz(t / "gz/train-images-idx3-ubyte.gz", idx_images(50));
  testing::write_gz(t / "gz/train-labels-idx1-ubyte.gz", idx_labels(std::vector<uint8_t>(50, 1)));
  auto gz = testing::read_file(t / "gz/train-images-idx3-ubyte.gz");
  gz.resize(gz.size() / 2);
  testing::write_file(t / "gz/train-images-idx3-ubyte.gz", gz);
  s.root = t / "gz";
  EXPECT_ERROR_MENTIONS(load_dataset(s), t / "gz/train-images-idx3-ubyte.gz", "truncated");
}

TEST(IdxDataset, RealFashionMnist) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(root + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << root << " not present";
  DatasetSpec s;
  s.root = root;
  s.size = 32;
  s.channels = 3;
  ImageDataset train = load_dataset(s);
  EXPECT_EQ(train.n, 60000);
  EXPECT_EQ(train.num_classes, 10);
  EXPECT_EQ(train.name, "fashion-mnist train");
  EXPECT_EQ(train.channels, 3);
  EXPECT_EQ(train.height, 32);
  std::vector<int64_t> counts(10, 0);
  for (int64_t l : train.labels) ++counts[static_cast<size_t>(l)];
  for (int64_t c : counts) EXPECT_EQ(c, 6000);  // Fashion-MNIST is balanced
  std::printf("  %s\n", train.describe().c_str());

  s.split = "test";
  s.size = 0;
  s.channels = 0;
  ImageDataset test = load_dataset(s);
  EXPECT_EQ(test.n, 10000);
  EXPECT_EQ(test.num_classes, 10);
  EXPECT_EQ(test.height, 28);
  std::printf("  %s\n", test.describe().c_str());
}

}  // namespace
}  // namespace advcl::data
