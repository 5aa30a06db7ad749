// The image grid of `advcl data show`: exact pixels of a small known grid,
// the label font, and a PNG that decodes back to the same pixels.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include <stb/stb_image.h>

#include "datasets/image_grid.h"

namespace advcl::data {
namespace {

// Two 1x2x3 grey images with distinct pixels; labels 7 and 12.
ImageDataset tiny_grey() {
  ImageDataset ds;
  ds.name = "tiny";
  ds.n = 2;
  ds.channels = 1;
  ds.height = 2;
  ds.width = 3;
  ds.num_classes = 13;
  ds.class_names.assign(13, "c");
  for (int i = 0; i < 12; ++i) ds.images.push_back(static_cast<uint8_t>(10 * (i + 1)));
  ds.labels = {7, 12};
  return ds;
}

TEST(ImageGrid, PixelsOfKnownImagesUpscaledWithGaps) {
  ImageDataset ds = tiny_grey();
  GridOptions opt;
  opt.scale = 2;
  opt.gap = 1;
  opt.labels = false;
  opt.gap_grey = 5;
  RgbImage g = render_grid(ds, 0, 10, opt);  // asks for more than there are: shows 2
  // 2 images -> 2 columns, 1 row; cells 6x4 (3x2 upscaled by 2).
  EXPECT_EQ(g.width, 1 + 6 + 1 + 6 + 1);
  EXPECT_EQ(g.height, 1 + 4 + 1);
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 6; ++x) {
        const uint8_t want = ds.image(k)[(y / 2) * 3 + x / 2];
        const uint8_t* p = g.at(1 + y, 1 + k * 7 + x);
        ASSERT_EQ(p[0], want) << "image " << k << " y " << y << " x " << x;
        ASSERT_EQ(p[1], want);
        ASSERT_EQ(p[2], want);
      }
  EXPECT_EQ(g.at(0, 0)[0], 5);  // the border
  EXPECT_EQ(g.at(3, 7)[1], 5);  // the gap between the two cells
}

TEST(ImageGrid, ColourImagesKeepTheirChannels) {
  ImageDataset ds;
  ds.name = "rgb";
  ds.n = 1;
  ds.channels = 3;
  ds.height = ds.width = 1;
  ds.images = {200, 100, 50};
  ds.labels = {0};
  ds.num_classes = 1;
  GridOptions opt;
  opt.labels = false;
  opt.scale = 1;
  opt.gap = 0;
  RgbImage g = render_grid(ds, 0, 1, opt);
  ASSERT_EQ(g.width, 1);
  EXPECT_EQ(g.at(0, 0)[0], 200);
  EXPECT_EQ(g.at(0, 0)[1], 100);
  EXPECT_EQ(g.at(0, 0)[2], 50);
}

TEST(ImageGrid, LabelBandShowsTheDigitsInTheFont) {
  ImageDataset ds = tiny_grey();
  GridOptions opt;
  opt.scale = 2;
  opt.gap = 0;
  opt.label_px = 1;
  RgbImage g = render_grid(ds, 1, 1, opt);  // image 1 alone: label 12
  // Cell 6 wide; image 4 rows, then a 7-row band: glyph rows 5..9, starting at x = 1.
  ASSERT_EQ(g.width, 6);
  ASSERT_EQ(g.height, 4 + 7);
  EXPECT_EQ(g.at(3, 0)[0], ds.image(1)[3]);
  // '1' is {2, 6, 2, 2, 7}: its middle column is lit on every row.
  for (int r = 0; r < 5; ++r) EXPECT_EQ(g.at(5 + r, 1 + 1)[0], 255) << "row " << r;
  EXPECT_EQ(g.at(5, 1)[0], 0);       // top-left of '1' is dark
  EXPECT_EQ(g.at(9, 1)[0], 255);     // bottom row of '1' is full
  EXPECT_EQ(g.at(4, 1)[0], 0);       // the band's margin row
  // '2' starts 4 columns later but is clipped at the cell's edge (x < 6): its
  // first column, {1, 0, 1, 1, 1} reading bit 2 of {7, 1, 7, 4, 7}.
  EXPECT_EQ(g.at(5, 5)[0], 255);
  EXPECT_EQ(g.at(6, 5)[0], 0);
}

TEST(ImageGrid, RejectsUnshowableInput) {
  ImageDataset ds = tiny_grey();
  EXPECT_THROW(render_grid(ds, 2, 4), std::exception);  // nothing left from index 2
  ds.channels = 2;
  EXPECT_THROW(render_grid(ds, 0, 1), std::exception);
}

TEST(ImageGrid, PngDecodesBackToTheSamePixels) {
  ImageDataset ds = tiny_grey();
  RgbImage g = render_grid(ds, 0, 2);
  const std::string path = testing::TempDir() + "advcl_grid_test.png";
  write_png(g, path);
  int w = 0, h = 0, comp = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &comp, 3), stbi_image_free);
  ASSERT_TRUE(px) << stbi_failure_reason();
  ASSERT_EQ(w, g.width);
  ASSERT_EQ(h, g.height);
  for (size_t i = 0; i < g.rgb.size(); ++i) ASSERT_EQ(px.get()[i], g.rgb[i]) << "byte " << i;
  std::remove(path.c_str());
  EXPECT_THROW(write_png(g, "/nonexistent-dir/grid.png"), std::exception);
}

}  // namespace
}  // namespace advcl::data
