#include "datasets/load_dataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>

#include "datasets/byte_stream.h"
#include "datasets/cifar.h"
#include "datasets/idx.h"
#include "datasets/image_folder.h"
#include "datasets/stl10.h"
#include "engine/common.h"

namespace advcl::data {

namespace {

bool mentions_fashion(std::string path) {
  std::transform(path.begin(), path.end(), path.begin(), [](unsigned char c) { return std::tolower(c); });
  return path.find("fashion") != std::string::npos;
}

int64_t parse_count(const std::string& option, const std::string& value, int64_t lo) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size()) fail("--", option, ": expected an integer, got '", value, "'");
  if (v < lo) fail("--", option, ": must be >= ", lo, ", got ", v);
  return v;
}

}  // namespace

const std::vector<std::string>& dataset_formats() {
  static const std::vector<std::string> f = {"auto", "cifar10", "cifar100", "stl10", "mnist", "fashion-mnist",
                                             "folder"};
  return f;
}

std::string detect_format(const std::string& root, const std::string& split, std::vector<std::string>* looked_for) {
  CifarSource cs;
  // find_cifar validates the split name; STL-10's extra splits are not CIFAR's.
  bool cifar_split = split == "train" || split == "test";
  if (cifar_split && find_cifar(root, 10, split, cs, looked_for)) return "cifar10";
  if (cifar_split && find_cifar(root, 100, split, cs, looked_for)) return "cifar100";
  if (!find_stl10(root, looked_for).empty()) return "stl10";
  std::string im, lb;
  if (cifar_split && find_idx(root, split, im, lb, looked_for)) return mentions_fashion(im) ? "fashion-mnist" : "mnist";
  if (looked_for) looked_for->push_back(path_join(root, "<class>/<image>.png|jpg|jpeg|bmp"));
  if (path_is_dir(root)) {
    // A folder whose sub-folders hold images: an ImageFolder.
    std::string base = path_is_dir(path_join(root, split)) ? path_join(root, split) : root;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code e2;
      if (!it->is_directory(e2)) continue;
      for (std::filesystem::directory_iterator f(it->path(), e2), fend; !e2 && f != fend; f.increment(e2))
        if (is_image_file_name(f->path().filename().string())) return "folder";
    }
  }
  return "";
}

ImageDataset load_dataset(const DatasetSpec& spec) {
  if (spec.root.empty()) fail("--data: no dataset path given");
  if (!path_is_dir(spec.root) && !path_is_file(spec.root)) fail("--data ", spec.root, ": no such file or folder");
  std::string format = spec.format;
  if (format == "auto") {
    std::vector<std::string> looked;
    format = detect_format(spec.root, spec.split, &looked);
    if (format.empty()) {
      std::ostringstream os;
      for (const auto& l : looked) os << "\n  " << l;
      fail("--data ", spec.root, ": no dataset recognised for split '", spec.split, "'; looked for:", os.str());
    }
  }
  if (format == "cifar10") return load_cifar(spec, 10);
  if (format == "cifar100") return load_cifar(spec, 100);
  if (format == "stl10") return load_stl10(spec);
  if (format == "mnist") return load_idx(spec, false);
  if (format == "fashion-mnist") return load_idx(spec, true);
  if (format == "folder") return load_image_folder(spec);
  std::string all;
  for (const auto& f : dataset_formats()) all += " " + f;
  fail("--dataset: unknown format '", spec.format, "'; known:", all);
}

bool apply_dataset_option(DatasetSpec& spec, const std::string& name, const std::string& value) {
  if (name == "data") {
    spec.root = value;
  } else if (name == "dataset" || name == "format") {
    const auto& f = dataset_formats();
    if (std::find(f.begin(), f.end(), value) == f.end()) {
      std::string all;
      for (const auto& x : f) all += " " + x;
      fail("--", name, ": unknown dataset '", value, "'; known:", all);
    }
    spec.format = value;
  } else if (name == "split") {
    if (value != "train" && value != "test" && value != "unlabeled" && value != "train+unlabeled")
      fail("--split: expected train, test, unlabeled or train+unlabeled, got '", value, "'");
    spec.split = value;
  } else if (name == "limit") {
    spec.limit = parse_count(name, value, 0);
  } else if (name == "per-class") {
    spec.per_class = parse_count(name, value, 0);
  } else if (name == "size") {
    spec.size = parse_count(name, value, 0);
  } else if (name == "channels") {
    spec.channels = parse_count(name, value, 0);
    if (spec.channels != 0 && spec.channels != 1 && spec.channels != 3)
      fail("--channels: expected 1 or 3, got ", value);
  } else if (name == "fit") {
    spec.fit = parse_fit_mode(value);
  } else {
    return false;
  }
  return true;
}

std::string dataset_options_help() {
  return "  --data PATH        dataset folder or official .tar.gz (CIFAR, STL-10)\n"
         "  --dataset NAME     auto|cifar10|cifar100|stl10|mnist|fashion-mnist|folder (default auto)\n"
         "  --split NAME       train|test (STL-10 also unlabeled, train+unlabeled)\n"
         "  --limit N          keep the first N images (0 = all)\n"
         "  --per-class N      keep the first N images of each class (0 = all)\n"
         "  --size N           fit images to NxN (0 = as stored)\n"
         "  --channels 1|3     convert channels (0 = as stored)\n"
         "  --fit MODE         auto|pad|resize: how smaller images reach --size (auto pads smaller, resizes larger)\n";
}

}  // namespace advcl::data
