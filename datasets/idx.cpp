#include "datasets/idx.h"

#include <sstream>

#include "datasets/byte_stream.h"
#include "datasets/dataset_builder.h"
#include "engine/common.h"

namespace advcl::data {

namespace {

uint32_t read_be32(ByteStream& in, const std::string& what) {
  uint8_t b[4];
  in.read_exact(b, 4, what);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

void check_magic(ByteStream& in, uint32_t want, const char* kind) {
  uint32_t magic = read_be32(in, "the IDX magic number");
  if (magic != want) {
    char got[16], exp[16];
    std::snprintf(got, sizeof got, "0x%08x", magic);
    std::snprintf(exp, sizeof exp, "0x%08x", want);
    fail(in.name(), ": bad magic ", got, ", expected ", exp, " for an IDX ", kind, " file");
  }
}

}  // namespace

bool find_idx(const std::string& root, const std::string& split, std::string& images, std::string& labels,
              std::vector<std::string>* looked_for) {
  std::string prefix;
  if (split == "train") prefix = "train";
  else if (split == "test") prefix = "t10k";
  else fail("MNIST/Fashion-MNIST: --split must be train or test, got '", split, "'");
  for (const char* sub : {"", "raw", "FashionMNIST/raw", "MNIST/raw", "fashion-mnist", "mnist"}) {
    std::string dir = *sub ? path_join(root, sub) : root;
    for (const char* ext : {".gz", ""}) {
      std::string im = path_join(dir, prefix + "-images-idx3-ubyte" + ext);
      std::string lb = path_join(dir, prefix + "-labels-idx1-ubyte" + ext);
      if (looked_for) looked_for->push_back(im);
      if (path_is_file(im) && path_is_file(lb)) {
        images = im;
        labels = lb;
        return true;
      }
    }
  }
  return false;
}

ImageDataset load_idx(const DatasetSpec& spec, bool fashion) {
  std::string im_path, lb_path;
  std::vector<std::string> looked;
  if (!find_idx(spec.root, spec.split, im_path, lb_path, &looked)) {
    std::ostringstream os;
    for (const auto& l : looked) os << "\n  " << l << " (and the matching labels-idx1 file)";
    fail("--data ", spec.root, ": no ", fashion ? "Fashion-MNIST" : "MNIST", " ", spec.split,
         " files found; looked for:", os.str());
  }

  FileStream lb(lb_path), im(im_path);
  return decode_idx(im, lb, spec, fashion);
}

ImageDataset decode_idx(ByteStream& im, ByteStream& lb, const DatasetSpec& spec, bool fashion) {
  check_magic(lb, 0x00000801, "labels");
  uint32_t n_labels = read_be32(lb, "the label count");
  // Read what is there rather than trusting the count, so a garbage header
  // cannot ask for gigabytes.
  std::vector<uint8_t> raw_labels = lb.read_rest();
  if (raw_labels.size() != n_labels)
    fail(lb.name(), ": ", raw_labels.size() < n_labels ? "truncated: " : "wrong size: ", "header says ", n_labels,
         " labels, the file holds ", raw_labels.size());

  check_magic(im, 0x00000803, "images");
  uint32_t n = read_be32(im, "the image count");
  uint32_t rows = read_be32(im, "the row count"), cols = read_be32(im, "the column count");
  if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096) fail(im.name(), ": implausible image size ", rows, "x", cols);
  if (n != n_labels) fail(im.name(), ": ", n, " images but ", lb.name(), " has ", n_labels, " labels");

  std::string name = std::string(fashion ? "fashion-mnist " : "mnist ") + spec.split;
  DatasetBuilder b(spec, name, 1, rows, cols);
  std::vector<uint8_t> img(static_cast<size_t>(rows) * cols);
  for (uint32_t i = 0; i < n && b.wants_more(); ++i) {
    if (raw_labels[i] > 9) fail(lb.name(), ": label ", i, " is ", int{raw_labels[i]}, ", outside [0, 10)");
    im.read_exact(img.data(), img.size(), "image " + std::to_string(i));
    b.add(img.data(), raw_labels[i]);
  }
  std::vector<std::string> classes = fashion_mnist_class_names();
  if (!fashion)
    for (int d = 0; d < 10; ++d) classes[d] = std::to_string(d);
  return b.finish(classes);
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

}  // namespace advcl::data
