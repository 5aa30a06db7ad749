#include "datasets/image_grid.h"

#include <algorithm>
#include <cmath>

#include "datasets/stb_write.h"
#include "engine/atomic_file.h"

#include "engine/common.h"

namespace advcl::data {

namespace {

// 3x5 glyphs, one row per entry, bit 2 = left column. Index 10 is '-'.
constexpr uint8_t kGlyphs[11][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7},
    {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}, {0, 0, 7, 0, 0},
};

void fill_rect(RgbImage& img, int64_t y0, int64_t x0, int64_t h, int64_t w, uint8_t v) {
  for (int64_t y = std::max<int64_t>(y0, 0); y < std::min(y0 + h, img.height); ++y)
    for (int64_t x = std::max<int64_t>(x0, 0); x < std::min(x0 + w, img.width); ++x) {
      uint8_t* p = img.rgb.data() + (y * img.width + x) * 3;
      p[0] = p[1] = p[2] = v;
    }
}

}  // namespace

void draw_digits(RgbImage& img, int64_t y, int64_t x, const std::string& text, int64_t px, uint8_t value) {
  for (char ch : text) {
    int g = ch >= '0' && ch <= '9' ? ch - '0' : ch == '-' ? 10 : -1;
    if (g >= 0)
      for (int r = 0; r < 5; ++r)
        for (int c = 0; c < 3; ++c)
          if (kGlyphs[g][r] & (4 >> c)) fill_rect(img, y + r * px, x + c * px, px, px, value);
    x += 4 * px;  // 3 columns + 1 of spacing
  }
}

int64_t grid_columns(int64_t n, const GridOptions& opt) {
  if (n <= 0) return 1;
  if (opt.columns > 0) return std::min(opt.columns, n);
  return static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
}

RgbImage render_grid(const ImageDataset& ds, int64_t first, int64_t count, const GridOptions& opt) {
  if (ds.channels != 1 && ds.channels != 3)
    fail(ds.name, ": cannot show images with ", ds.channels, " channels (1 or 3 expected)");
  if (opt.scale < 1 || opt.gap < 0 || opt.label_px < 1 || opt.columns < 0)
    fail("image grid: scale and label_px must be >= 1, gap and columns >= 0");
  if (first < 0) fail("image grid: first image index ", first, " is negative");
  const int64_t n = std::max<int64_t>(0, std::min(count, ds.n - first));
  if (n == 0) fail(ds.name, ": no images to show (", ds.n, " in the dataset, asked for ", count, " from ", first, ")");

  const int64_t cols = grid_columns(n, opt);
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t img_h = ds.height * opt.scale, img_w = ds.width * opt.scale;
  const int64_t band = opt.labels ? 7 * opt.label_px : 0;  // 5 glyph rows + 1 above + 1 below
  const int64_t cell_h = img_h + band, cell_w = img_w;

  RgbImage out;
  out.height = rows * cell_h + (rows + 1) * opt.gap;
  out.width = cols * cell_w + (cols + 1) * opt.gap;
  out.rgb.assign(static_cast<size_t>(out.height * out.width * 3), opt.gap_grey);

  const int64_t plane = ds.height * ds.width;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t y0 = opt.gap + (k / cols) * (cell_h + opt.gap), x0 = opt.gap + (k % cols) * (cell_w + opt.gap);
    const uint8_t* src = ds.image(first + k);
    for (int64_t y = 0; y < img_h; ++y)
      for (int64_t x = 0; x < img_w; ++x) {
        const int64_t s = (y / opt.scale) * ds.width + x / opt.scale;
        uint8_t* p = out.rgb.data() + ((y0 + y) * out.width + x0 + x) * 3;
        for (int64_t c = 0; c < 3; ++c) p[c] = src[(ds.channels == 3 ? c : 0) * plane + s];
      }
    if (opt.labels) {
      fill_rect(out, y0 + img_h, x0, band, cell_w, 0);
      draw_digits(out, y0 + img_h + opt.label_px, x0 + opt.label_px, std::to_string(ds.labels.at(first + k)),
                  opt.label_px);
    }
  }
  return out;
}

void write_png(const RgbImage& img, const std::string& path) {
  if (img.height <= 0 || img.width <= 0 || img.rgb.size() != static_cast<size_t>(img.height * img.width * 3))
    fail(path, ": cannot write an empty or inconsistent image");
  // Encoded in memory, then written atomically (engine/atomic_file.h): a
  // failed write leaves the previous file, never a truncated PNG.
  std::string png;
  auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, static_cast<int>(img.width), static_cast<int>(img.height), 3,
                              img.rgb.data(), static_cast<int>(img.width * 3)))
    fail(path, ": cannot encode the PNG");
  write_file_atomically(path, png);
}

}  // namespace advcl::data
