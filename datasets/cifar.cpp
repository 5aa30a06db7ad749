#include "datasets/cifar.h"

#include <map>
#include <sstream>

#include "datasets/byte_stream.h"
#include "datasets/dataset_builder.h"
#include "datasets/pickle.h"
#include "datasets/tar_reader.h"
#include "engine/common.h"

namespace advcl::data {

namespace {

constexpr int64_t kImageBytes = 3 * 32 * 32;

// One official distribution: its folder name, files per split, archive name.
struct Layout {
  bool python;
  std::string folder, archive;
  std::vector<std::string> train, test;
};

std::vector<Layout> layouts(int classes) {
  if (classes == 10)
    return {{true, "cifar-10-batches-py", "cifar-10-python.tar.gz",
             {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"}, {"test_batch"}},
            {false, "cifar-10-batches-bin", "cifar-10-binary.tar.gz",
             {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
             {"test_batch.bin"}}};
  if (classes == 100)
    return {{true, "cifar-100-python", "cifar-100-python.tar.gz", {"train"}, {"test"}},
            {false, "cifar-100-binary", "cifar-100-binary.tar.gz", {"train.bin"}, {"test.bin"}}};
  fail("CIFAR: classes must be 10 or 100, got ", classes);
}

const std::vector<std::string>& split_files(const Layout& l, const std::string& split) {
  if (split == "train") return l.train;
  if (split == "test") return l.test;
  fail("CIFAR: --split must be train or test, got '", split, "'");
}

std::string basename_of(const std::string& p) {
  size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}
std::string parent_name(const std::string& p) {
  size_t s = p.find_last_of('/');
  return s == std::string::npos ? std::string() : basename_of(p.substr(0, s));
}

// Does this archive hold `folder/file` (or `file` at its top level)?
bool archive_has(const std::string& path, const std::string& folder, const std::string& file) {
  TarReader tar(path);
  while (tar.next()) {
    const std::string& m = tar.member_name();
    if (basename_of(m) == file && (parent_name(m) == folder || m == file)) return true;
  }
  return false;
}

const Layout& layout_of(int classes, bool python) {
  static const std::vector<Layout> l10 = layouts(10), l100 = layouts(100);
  const auto& ls = classes == 10 ? l10 : l100;
  return ls[python ? 0 : 1];
}

}  // namespace

std::string CifarSource::describe() const {
  return std::string(python ? "python" : "binary") + (archive ? " archive " : " folder ") + path;
}

bool find_cifar(const std::string& root, int classes, const std::string& split, CifarSource& out,
                std::vector<std::string>* looked_for) {
  auto note = [&](const std::string& s) {
    if (looked_for) looked_for->push_back(s);
  };
  for (const Layout& l : layouts(classes)) {
    const std::string& first = split_files(l, split).front();
    std::string sub = path_join(root, l.folder);
    note(path_join(sub, first));
    if (path_is_file(path_join(sub, first))) {
      out = {l.python, false, sub};
      return true;
    }
    note(path_join(root, first));
    if (path_is_file(path_join(root, first))) {
      out = {l.python, false, root};
      return true;
    }
    note(path_join(root, l.archive));
    if (path_is_file(path_join(root, l.archive))) {
      out = {l.python, true, path_join(root, l.archive)};
      return true;
    }
  }
  // `root` is itself an archive: the official name tells the version, any
  // other name is opened to look.
  if (path_is_file(root) && is_tar_archive_name(root)) {
    for (const Layout& l : layouts(classes)) {
      const std::string& first = split_files(l, split).front();
      note(root + ":" + l.folder + "/" + first);
      if (basename_of(root) == l.archive || archive_has(root, l.folder, first)) {
        out = {l.python, true, root};
        return true;
      }
    }
  }
  return false;
}

void decode_cifar_binary(const std::vector<uint8_t>& data, int classes, const std::string& name,
                         std::vector<uint8_t>& images, std::vector<int64_t>& labels) {
  const int64_t label_bytes = classes == 10 ? 1 : 2;
  const int64_t rec = label_bytes + kImageBytes;
  const int64_t size = static_cast<int64_t>(data.size());
  if (size == 0) fail(name, ": empty file (expected records of ", rec, " bytes)");
  if (size % rec != 0)
    fail(name, ": truncated record: the file has ", size, " bytes, not a whole number of ", rec,
         "-byte CIFAR-", classes, " records (record ", size / rec, " has only ", size % rec, " bytes)");
  for (int64_t r = 0; r < size / rec; ++r) {
    const uint8_t* p = data.data() + r * rec;
    int64_t label = p[label_bytes - 1];  // CIFAR-100: coarse, then the fine label we use
    if (classes == 100 && p[0] >= 20)
      fail(name, ": record ", r, " has coarse label ", int{p[0]}, ", outside [0, 20) (not a CIFAR-100 file?)");
    if (label >= classes)
      fail(name, ": record ", r, " has label ", label, ", outside [0, ", classes, ")",
           classes == 10 ? " (a CIFAR-100 file read as CIFAR-10?)" : "");
    labels.push_back(label);
    images.insert(images.end(), p + label_bytes, p + rec);
  }
}

void decode_cifar_pickle(const std::vector<uint8_t>& data, int classes, const std::string& name,
                         std::vector<uint8_t>& images, std::vector<int64_t>& labels) {
  PyRef root = unpickle(data, name);
  if (root->kind != PyValue::Kind::Dict) fail(name, ": expected a pickled dict, found a ", root->kind_name());
  auto keys = [&] {
    std::string ks;
    for (const auto& kv : root->dict) ks += (ks.empty() ? "" : ", ") + kv.first->s;
    return ks;
  };
  const char* label_key = classes == 10 ? "labels" : "fine_labels";
  PyRef x = root->get("data"), y = root->get(label_key);
  if (!x || !y)
    fail(name, ": not a CIFAR-", classes, " batch: needs keys 'data' and '", label_key, "', has: ", keys());
  if (x->kind != PyValue::Kind::Array) fail(name, ": 'data' is a ", x->kind_name(), ", expected a numpy array");
  if (x->dtype.size() < 2 || x->dtype.compare(x->dtype.size() - 2, 2, "u1") != 0)
    fail(name, ": 'data' has dtype ", x->dtype, ", expected uint8");
  if (x->shape.size() != 2 || x->shape[1] != kImageBytes)
    fail(name, ": 'data' has shape ", shape_str(x->shape), ", expected [N, 3072]");
  if (y->kind != PyValue::Kind::List) fail(name, ": '", label_key, "' is a ", y->kind_name(), ", expected a list");
  const int64_t n = x->shape[0];
  if (static_cast<int64_t>(y->items.size()) != n)
    fail(name, ": ", y->items.size(), " labels for ", n, " images");
  for (int64_t i = 0; i < n; ++i) {
    const PyValue& v = *y->items[i];
    if (v.kind != PyValue::Kind::Int) fail(name, ": label ", i, " is a ", v.kind_name(), ", expected an int");
    if (v.i < 0 || v.i >= classes) fail(name, ": label ", i, " is ", v.i, ", outside [0, ", classes, ")");
    labels.push_back(v.i);
  }
  images.insert(images.end(), x->bytes.begin(), x->bytes.end());
}

ImageDataset load_cifar(const DatasetSpec& spec, int classes) {
  std::vector<std::string> looked;
  CifarSource src;
  if (!find_cifar(spec.root, classes, spec.split, src, &looked)) {
    std::ostringstream os;
    for (const auto& l : looked) os << "\n  " << l;
    fail("--data ", spec.root, ": no CIFAR-", classes, " ", spec.split, " data found; looked for:", os.str());
  }
  const Layout& l = layout_of(classes, src.python);
  const auto& files = split_files(l, spec.split);
  auto decode = [&](const std::vector<uint8_t>& bytes, const std::string& name, std::vector<uint8_t>& im,
                    std::vector<int64_t>& lb) {
    if (src.python) decode_cifar_pickle(bytes, classes, name, im, lb);
    else decode_cifar_binary(bytes, classes, name, im, lb);
  };

  // Decoded files in split order (archives may store them in any order).
  std::vector<std::vector<uint8_t>> imgs(files.size());
  std::vector<std::vector<int64_t>> lbls(files.size());
  if (src.archive) {
    std::vector<bool> got(files.size(), false);
    TarReader tar(src.path);
    while (tar.next()) {
      const std::string& m = tar.member_name();
      for (size_t f = 0; f < files.size(); ++f)
        if (!got[f] && basename_of(m) == files[f] && (parent_name(m) == l.folder || m == files[f])) {
          decode(tar.member().read_rest(), tar.member().name(), imgs[f], lbls[f]);
          got[f] = true;
        }
    }
    std::string missing;
    for (size_t f = 0; f < files.size(); ++f)
      if (!got[f]) missing += " " + l.folder + "/" + files[f];
    if (!missing.empty()) fail(src.path, ": archive lacks the CIFAR-", classes, " files:", missing);
  } else {
    std::string missing;
    for (const auto& f : files)
      if (!path_is_file(path_join(src.path, f))) missing += " " + path_join(src.path, f);
    if (!missing.empty()) fail("--data ", spec.root, ": missing CIFAR-", classes, " files:", missing);
    for (size_t f = 0; f < files.size(); ++f) {
      FileStream in(path_join(src.path, files[f]));
      decode(in.read_rest(), in.name(), imgs[f], lbls[f]);
    }
  }

  std::string name = std::string("cifar") + std::to_string(classes) + " " + spec.split + " (" +
                     (src.python ? "python" : "binary") + (src.archive ? " archive" : "") + ")";
  DatasetBuilder b(spec, name, 3, 32, 32);
  for (size_t f = 0; f < files.size() && b.wants_more(); ++f) {
    for (size_t i = 0; i < lbls[f].size() && b.wants_more(); ++i) b.add(imgs[f].data() + i * kImageBytes, lbls[f][i]);
    std::vector<uint8_t>().swap(imgs[f]);  // free as we go
  }
  return b.finish(classes == 10 ? cifar10_class_names() : cifar100_class_names());
}

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird", "cat", "deer",
                                                 "dog", "frog", "horse", "ship", "truck"};
  return names;
}

const std::vector<std::string>& cifar100_class_names() {
  static const std::vector<std::string> names = {
      "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
      "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
      "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
      "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
      "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
      "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
      "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
      "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
      "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
      "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};
  return names;
}

}  // namespace advcl::data
