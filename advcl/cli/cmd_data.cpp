// `advcl data show`: look at a dataset the way the stages will see it (same
// --data/--dataset/--size/--fit options): its one-line summary, the count of
// each class, and a PNG grid of its first images with their labels, so a
// wrong reader, a label shift or a bad fit is visible before any training.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "advcl/cli/commands.h"
#include "advcl/cli/option_checks.h"
#include "advcl/cli/common_options.h"
#include "datasets/image_grid.h"
#include "engine/atomic_file.h"

namespace advcl::cli {

namespace {

int show(const DataOptions& data, int64_t count, int64_t columns, int64_t scale, const std::string& out) {
  if (!out.empty()) check_writable(out, "--out");  // before the data set is read
  auto ds = load_data(data, data.split);
  std::printf("%s\n", ds->describe().c_str());

  std::vector<int64_t> per_class(static_cast<size_t>(ds->num_classes), 0);
  int64_t unlabelled = 0;
  for (int64_t l : ds->labels) (l < 0 ? unlabelled : per_class[static_cast<size_t>(l)]) += 1;
  std::printf("classes:\n");
  for (int64_t c = 0; c < ds->num_classes; ++c) {
    const std::string& name = c < static_cast<int64_t>(ds->class_names.size()) ? ds->class_names[c] : "";
    std::printf("  %3lld %-16s %lld\n", static_cast<long long>(c), name.c_str(),
                static_cast<long long>(per_class[static_cast<size_t>(c)]));
  }
  if (unlabelled) std::printf("  unlabelled           %lld\n", static_cast<long long>(unlabelled));

  if (out.empty()) return 0;
  data::GridOptions opt;
  opt.scale = scale;
  opt.columns = columns;
  data::RgbImage grid = data::render_grid(*ds, 0, count, opt);
  data::write_png(grid, out);
  // The labels are drawn under each image; listing them too makes the
  // output checkable without opening the picture.
  const int64_t n = std::min(count, ds->n);
  const int64_t cols = data::grid_columns(n, opt);
  std::printf("wrote %s (%lldx%lld): the first %lld images, %lld per row; their labels row by row:\n", out.c_str(),
              static_cast<long long>(grid.width), static_cast<long long>(grid.height), static_cast<long long>(n),
              static_cast<long long>(cols));
  for (int64_t i = 0; i < n; ++i) {
    std::printf("%s%3lld", i % cols == 0 ? " " : "", static_cast<long long>(ds->labels[i]));
    if (i % cols == cols - 1 || i == n - 1) std::printf("\n");
  }
  return 0;
}

}  // namespace

int cmd_data(int argc, char** argv) {
  CLI::App app{"Look at a dataset", "advcl data"};
  app.require_subcommand(1);
  CLI::App* show_cmd = app.add_subcommand("show", "summary, per-class counts and a PNG grid of the first images");
  DataOptions data;
  add_data_options(*show_cmd, data);
  int64_t count = 64, columns = 0, scale = 2;
  std::string out;
  show_cmd->add_option("--count", count, "images in the grid")->capture_default_str()->check(CLI::PositiveNumber);
  show_cmd->add_option("--columns", columns, "images per row (0: about the square root of --count)");
  show_cmd->add_option("--scale", scale, "upscaling factor of the grid")->capture_default_str()->check(CLI::PositiveNumber);
  show_cmd->add_option("--out", out, "PNG file for the grid (none: no grid)");
  CLI11_PARSE(app, argc, argv);
  check_options(*show_cmd);  // the shared options' checks (advcl/cli/option_checks.h): --size, --limit, ...
  return show(data, count, columns, scale, out);
}

}  // namespace advcl::cli
