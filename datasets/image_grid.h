// A contact sheet of dataset images, for looking at what a reader produced
// (`advcl data show`): the images side by side in a grid, each upscaled by
// an integer factor (nearest neighbour, so pixels stay visible), with its
// label index written under it in a tiny 3x5 digit font.
//
// Layout of one cell (cell_w x cell_h), cells separated by `gap` pixels of
// the gap colour:
//   image: width*scale x height*scale
//   label band: (5 + 2) * label_px rows, black, digits white (when labels on)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image_dataset.h"

namespace advcl::data {

struct GridOptions {
  int64_t columns = 0;    // 0: about the square root of the image count
  int64_t scale = 2;      // upscaling factor, >= 1
  int64_t gap = 2;        // pixels between cells
  bool labels = true;     // draw the label index under each image
  int64_t label_px = 2;   // size of one font pixel
  uint8_t gap_grey = 64;  // colour of the gaps
};

// An RGB image, HWC interleaved (what PNG writers take).
struct RgbImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> rgb;
  const uint8_t* at(int64_t y, int64_t x) const { return rgb.data() + (y * width + x) * 3; }
};

// Images first .. first + count - 1 of `ds` (fewer if the dataset ends
// sooner), row by row. Grey datasets are shown grey; 3-channel as RGB;
// other channel counts are an error.
RgbImage render_grid(const ImageDataset& ds, int64_t first, int64_t count, const GridOptions& opt = {});

// Images per row for n images: opt.columns (at most n), or about sqrt(n).
int64_t grid_columns(int64_t n, const GridOptions& opt);

// Draws the text (digits and '-'; other characters leave a blank) with its
// top-left corner at (y, x), clipped to the image.
void draw_digits(RgbImage& img, int64_t y, int64_t x, const std::string& text, int64_t px, uint8_t value = 255);

// Writes a PNG; throws naming the path when it cannot be written.
void write_png(const RgbImage& img, const std::string& path);

}  // namespace advcl::data
