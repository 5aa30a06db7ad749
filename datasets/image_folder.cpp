#include "datasets/image_folder.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>

#include "datasets/byte_stream.h"
#include "datasets/dataset_builder.h"
#include "datasets/jpeg_check.h"
#include "datasets/png_check.h"
#include "engine/common.h"

namespace advcl::data {

namespace fs = std::filesystem;

bool is_image_file_name(const std::string& name) {
  for (const char* ext : {".png", ".jpg", ".jpeg", ".bmp"})
    if (ends_with_nocase(name, ext)) return true;
  return false;
}

namespace {

// stb's interleaved RGB (HWC) to CHW; throws naming `name` when stb failed.
std::vector<uint8_t> stb_to_chw(stbi_uc* data, int w, int h, const std::string& name, int64_t& height,
                                int64_t& width) {
  std::unique_ptr<stbi_uc, void (*)(void*)> px(data, stbi_image_free);
  if (!px) fail(name, ": cannot decode image (", stbi_failure_reason() ? stbi_failure_reason() : "unknown error", ")");
  height = h;
  width = w;
  const int64_t plane = int64_t{h} * w;
  std::vector<uint8_t> chw(static_cast<size_t>(3 * plane));
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t c = 0; c < 3; ++c) chw[c * plane + i] = px.get()[i * 3 + c];
  return chw;
}

}  // namespace

std::vector<uint8_t> decode_image_rgb(const std::string& path, int64_t& height, int64_t& width) {
  // Read whole, so the JPEG guard below sees the same bytes stb decodes.
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open (", path_is_file(path) ? "permission denied?" : "no such file", ")");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) fail(path, ": read error");
  return decode_image_rgb(bytes.data(), bytes.size(), path, height, width);
}

std::vector<uint8_t> decode_image_rgb(const uint8_t* data, size_t size, const std::string& name, int64_t& height,
                                      int64_t& width) {
  if (size > static_cast<size_t>(std::numeric_limits<int>::max())) fail(name, ": image data over 2 GiB");
  check_jpeg_huffman_tables(data, size, name);
  check_png_chunks(data, size, name);  // stb_image decodes a PNG without checking its CRCs
  int w = 0, h = 0, comp = 0;
  stbi_uc* px = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &comp, 3);
  return stb_to_chw(px, w, h, name, height, width);
}

namespace {

std::vector<std::string> sorted_entries(const std::string& dir, bool want_dirs) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    bool is_dir = it->is_directory(e2);
    std::string name = it->path().filename().string();
    if (want_dirs ? is_dir : (!is_dir && is_image_file_name(name))) out.push_back(name);
  }
  if (ec) fail(dir, ": cannot list folder (", ec.message(), ")");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ImageDataset load_image_folder(const DatasetSpec& spec) {
  std::string root = spec.root;
  if (!path_is_dir(root)) fail("--data ", root, ": not a folder (an image folder is root/<class>/<images>)");
  if (path_is_dir(path_join(root, spec.split))) root = path_join(root, spec.split);
  std::vector<std::string> classes = sorted_entries(root, true);
  if (classes.empty()) fail("--data ", root, ": no class sub-folders (expected root/<class>/<images>)");

  // A class folder without images would still be a class (an output of the
  // classifier no image ever trains), and the class indices would shift:
  // refuse it, naming every such folder.
  std::vector<std::vector<std::string>> files(classes.size());
  std::string empty;
  for (size_t c = 0; c < classes.size(); ++c) {
    files[c] = sorted_entries(path_join(root, classes[c]), false);
    if (files[c].empty()) empty += (empty.empty() ? "'" : ", '") + classes[c] + "'";
  }
  if (!empty.empty())
    fail("--data ", root, ": class folder(s) ", empty,
         " hold no .png/.jpg/.jpeg/.bmp images; remove them or add images (every sub-folder is a class)");

  std::unique_ptr<DatasetBuilder> b;
  int64_t h0 = 0, w0 = 0;
  std::string first_file;
  bool any = false, mixed = false;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::string dir = path_join(root, classes[c]);
    for (const std::string& f : files[c]) {
      if (b && !b->wants_more()) break;
      std::string path = path_join(dir, f);
      int64_t h = 0, w = 0;
      std::vector<uint8_t> chw = decode_image_rgb(path, h, w);
      any = true;
      if (!b) {
        // Without --size every image must match the first; with it each is
        // fitted on its own, so the builder is set up for the target shape.
        h0 = h;
        w0 = w;
        first_file = path;
        b = std::make_unique<DatasetBuilder>(spec, "folder " + root, 3, h, w);
      }
      if (h != h0 || w != w0) {
        if (spec.size == 0)
          fail(path, ": image is ", h, "x", w, " but ", first_file, " is ", h0, "x", w0,
               "; pass --size to resize all images to one size");
        ImageFitter fit(3, h, w, spec.size, spec.channels, spec.fit, path);
        std::vector<uint8_t> out(static_cast<size_t>(fit.out_bytes()));
        fit.apply(chw.data(), out.data());
        b->add_fitted(out.data(), static_cast<int64_t>(c));
        mixed = true;
        continue;
      }
      b->add(chw.data(), static_cast<int64_t>(c));
    }
  }
  if (!any) fail("--data ", root, ": the class folders hold no .png/.jpg/.jpeg/.bmp images");
  if (mixed) b->set_note("images of several sizes fitted to " + std::to_string(spec.size) + "x" +
                          std::to_string(spec.size) + " (fit " + fit_mode_name(spec.fit) + ")");
  return b->finish(classes);
}

}  // namespace advcl::data
