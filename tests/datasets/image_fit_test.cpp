// Fitting images to the model: padding, PIL-convention bilinear resize,
// channel conversion; and the subset options.
#include <gtest/gtest.h>

#include <cstdlib>

#include "datasets/image_dataset.h"
#include "datasets/image_fit.h"
#include "datasets/load_dataset.h"
#include "tests/datasets/dataset_test_util.h"

namespace advcl::data {
namespace {

std::vector<uint8_t> test_image(int64_t c, int64_t h, int64_t w) {
  std::vector<uint8_t> v(static_cast<size_t>(c * h * w));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) v[(k * h + y) * w + x] = static_cast<uint8_t>((37 * x + 91 * y + 53 * k + 7 * x * y) % 256);
  return v;
}

int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(int{a[i]} - int{b[i]}));
  return m;
}

TEST(DatasetFit, ResizeMatchesPilBilinearWithinOneLevel) {
  // Golden outputs of PIL's Image.resize(BILINEAR): tests/datasets/golden/make_resize_golden.py
  auto pil96 = testing::read_file(testing::golden_path("pil_resize_96_to_32.bin"));
  ASSERT_EQ(pil96.size(), 3u * 32 * 32);
  ImageFitter down(3, 96, 96, 32, 0, FitMode::Auto, "test");
  std::vector<uint8_t> out(3 * 32 * 32);
  down.apply(test_image(3, 96, 96).data(), out.data());
  EXPECT_LE(max_abs_diff(out, pil96), 1);

  auto pil28 = testing::read_file(testing::golden_path("pil_resize_28_to_32.bin"));
  ASSERT_EQ(pil28.size(), 32u * 32);
  ImageFitter up(1, 28, 28, 32, 0, FitMode::Resize, "test");
  std::vector<uint8_t> out28(32 * 32);
  up.apply(test_image(1, 28, 28).data(), out28.data());
  EXPECT_LE(max_abs_diff(out28, pil28), 1);
  EXPECT_NE(up.note().find("resized"), std::string::npos);
}

TEST(DatasetFit, ShrinkingAveragesNeighbourhoods) {
  // A horizontal ramp (value = column): 96 -> 32 with the widened triangle
  // filter has weights (1,2,3,2,1)/9 on columns 3o-1..3o+3, so the interior
  // output o is exactly 3o + 1.
  std::vector<uint8_t> ramp(96 * 96);
  for (int y = 0; y < 96; ++y)
    for (int x = 0; x < 96; ++x) ramp[y * 96 + x] = static_cast<uint8_t>(x);
  ImageFitter f(1, 96, 96, 32, 0, FitMode::Auto, "ramp");
  std::vector<uint8_t> out(32 * 32);
  f.apply(ramp.data(), out.data());
  for (int o = 1; o < 31; ++o) EXPECT_EQ(out[5 * 32 + o], 3 * o + 1) << o;
  EXPECT_EQ(out[0], 1);  // (0*2 + 1*3 + 2*2 + 3*1) / 8 = 1.25
}

TEST(DatasetFit, PadReplicateAndGrey) {
  auto img = test_image(1, 28, 28);
  ImageFitter pad(1, 28, 28, 32, 3, FitMode::Auto, "mnist");
  EXPECT_EQ(pad.out_c(), 3);
  EXPECT_EQ(pad.out_h(), 32);
  std::vector<uint8_t> out(3 * 32 * 32);
  pad.apply(img.data(), out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
        ASSERT_EQ(out[(c * 32 + y) * 32 + x], inside ? img[(y - 2) * 28 + x - 2] : 0) << c << " " << y << " " << x;
      }
  EXPECT_NE(pad.note().find("zero-padded 28x28 -> 32x32 (2 on each side)"), std::string::npos) << pad.note();
  EXPECT_NE(pad.note().find("replicated to 3 channels"), std::string::npos) << pad.note();

  std::vector<uint8_t> rgb = {255, 0, 10, 0, 255, 20, 0, 0, 30};  // 3 channels of 1x3 pixels
  ImageFitter grey(3, 1, 3, 0, 1, FitMode::Auto, "rgb");
  std::vector<uint8_t> g(3);
  grey.apply(rgb.data(), g.data());
  EXPECT_EQ(g, (std::vector<uint8_t>{76, 150, 18}));  // PIL: (299R + 587G + 114B) / 1000

  EXPECT_ERROR_MENTIONS(ImageFitter(3, 96, 96, 32, 0, FitMode::Pad, "stl10"), "stl10", "larger", "--fit resize");
  EXPECT_ERROR_MENTIONS(ImageFitter(3, 32, 32, 0, 2, FitMode::Auto, "x"), "--channels");
  EXPECT_TRUE(ImageFitter(3, 32, 32, 32, 3, FitMode::Auto, "x").identity());
}

TEST(DatasetSubset, LimitAndPerClassKeepDatasetOrder) {
  ImageDataset ds;
  ds.name = "toy";
  ds.n = 8;
  ds.channels = ds.height = ds.width = 1;
  ds.images = {0, 1, 2, 3, 4, 5, 6, 7};
  ds.labels = {0, 1, 0, 0, 1, 2, 1, 0};
  ds.num_classes = 3;
  ds.class_names = {"a", "b", "c"};
  ImageDataset per = ds;
  take_subset(per, 0, 2);
  EXPECT_EQ(per.images, (std::vector<uint8_t>{0, 1, 2, 4, 5}));
  EXPECT_EQ(per.labels, (std::vector<int64_t>{0, 1, 0, 1, 2}));
  take_subset(per, 3, 0);
  EXPECT_EQ(per.n, 3);
  EXPECT_NE(per.describe().find("3 images, 3 classes, 1x1x1"), std::string::npos) << per.describe();
  EXPECT_ERROR_MENTIONS(take_subset(ds, -1, 0), "toy", "limit");
  ds.labels[3] = 5;
  EXPECT_ERROR_MENTIONS(ds.check(), "toy", "label 5 of image 3");
}

TEST(DatasetOptions, ParsesAndRejectsWithTheOptionName) {
  DatasetSpec s;
  EXPECT_TRUE(apply_dataset_option(s, "data", "/x"));
  EXPECT_TRUE(apply_dataset_option(s, "dataset", "stl10"));
  EXPECT_TRUE(apply_dataset_option(s, "limit", "100"));
  EXPECT_TRUE(apply_dataset_option(s, "per-class", "5"));
  EXPECT_TRUE(apply_dataset_option(s, "size", "32"));
  EXPECT_TRUE(apply_dataset_option(s, "channels", "3"));
  EXPECT_TRUE(apply_dataset_option(s, "fit", "resize"));
  EXPECT_TRUE(apply_dataset_option(s, "split", "train+unlabeled"));
  EXPECT_FALSE(apply_dataset_option(s, "lr", "0.1"));
  EXPECT_EQ(s.root, "/x");
  EXPECT_EQ(s.limit, 100);
  EXPECT_EQ(s.per_class, 5);
  EXPECT_EQ(s.fit, FitMode::Resize);
  EXPECT_EQ(s.read_limit(), 0);  // a per-class subset must see every image
  EXPECT_ERROR_MENTIONS(apply_dataset_option(s, "limit", "ten"), "--limit", "ten");
  EXPECT_ERROR_MENTIONS(apply_dataset_option(s, "limit", "-3"), "--limit");
  EXPECT_ERROR_MENTIONS(apply_dataset_option(s, "dataset", "imagenet"), "--dataset", "imagenet", "cifar10");
  EXPECT_ERROR_MENTIONS(apply_dataset_option(s, "fit", "crop"), "--fit", "crop");
  EXPECT_ERROR_MENTIONS(apply_dataset_option(s, "channels", "2"), "--channels");
  EXPECT_ERROR_MENTIONS(load_dataset(DatasetSpec{}), "--data");
  DatasetSpec nowhere;
  nowhere.root = "/nonexistent/advcl/data";
  EXPECT_ERROR_MENTIONS(load_dataset(nowhere), "/nonexistent/advcl/data", "no such");
  testing::TempDir empty;
  nowhere.root = empty.path();
  EXPECT_ERROR_MENTIONS(load_dataset(nowhere), empty.path(), "no dataset recognised", "cifar-10-batches-py",
                        "stl10_binary", "train-images-idx3-ubyte");
}

}  // namespace
}  // namespace advcl::data
