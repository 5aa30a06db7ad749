// CIFAR-10/100 readers: binary and python distributions, folders and
// .tar.gz archives, auto-detection, and the errors for bad files.
#include <gtest/gtest.h>

#include "datasets/cifar.h"
#include "datasets/load_dataset.h"
#include "datasets/pickle.h"
#include "tests/datasets/cifar_test_util.h"

namespace advcl::data {
namespace {

using testing::cifar_binary;
using testing::golden_path;
using testing::pattern;
using testing::py2_cifar_pickle;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

// Expects image k of ds to be pattern image first + k.
void expect_pattern(const ImageDataset& ds, int64_t k, int64_t first) {
  ASSERT_EQ(ds.image_bytes(), 3072);
  for (int64_t j = 0; j < 3072; ++j) ASSERT_EQ(ds.image(k)[j], pattern(first, j)) << "image " << k << " byte " << j;
}

DatasetSpec spec_for(const std::string& root, const std::string& split = "train", const std::string& format = "auto") {
  DatasetSpec s;
  s.root = root;
  s.split = split;
  s.format = format;
  return s;
}

// Five training batches of two images each (images 0..9) and a test batch.
void write_cifar10_binary(const std::string& dir) {
  for (int b = 0; b < 5; ++b)
    write_file(dir + "/data_batch_" + std::to_string(b + 1) + ".bin", cifar_binary(10, 2 * b, {b, 9 - b}));
  write_file(dir + "/test_batch.bin", cifar_binary(10, 100, {1, 2, 3}));
}

void write_cifar10_python(const std::string& dir) {
  for (int b = 0; b < 5; ++b)
    write_file(dir + "/data_batch_" + std::to_string(b + 1), py2_cifar_pickle(2 * b, {b, 9 - b}));
  write_file(dir + "/test_batch", py2_cifar_pickle(100, {1, 2, 3}));
}

void expect_cifar10_train(const ImageDataset& ds) {
  ASSERT_EQ(ds.n, 10);
  EXPECT_EQ(ds.channels, 3);
  EXPECT_EQ(ds.height, 32);
  EXPECT_EQ(ds.width, 32);
  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_EQ(ds.class_names[0], "airplane");
  for (int b = 0; b < 5; ++b) {
    EXPECT_EQ(ds.labels[2 * b], b);
    EXPECT_EQ(ds.labels[2 * b + 1], 9 - b);
  }
  for (int64_t k = 0; k < 10; ++k) expect_pattern(ds, k, k);
}

TEST(CifarBinary, Cifar10FolderRoundTrip) {
  TempDir t;
  write_cifar10_binary(t / "cifar-10-batches-bin");
  ImageDataset ds = load_dataset(spec_for(t.path()));
  expect_cifar10_train(ds);
  EXPECT_NE(ds.name.find("binary"), std::string::npos);
  EXPECT_NE(ds.describe().find("10 images, 10 classes, 3x32x32"), std::string::npos) << ds.describe();

  ImageDataset test = load_dataset(spec_for(t / "cifar-10-batches-bin", "test"));  // the folder itself
  ASSERT_EQ(test.n, 3);
  EXPECT_EQ(test.labels, (std::vector<int64_t>{1, 2, 3}));
  expect_pattern(test, 2, 102);
}

TEST(CifarBinary, Cifar100UsesFineLabels) {
  TempDir t;
  write_file(t / "cifar-100-binary/train.bin", cifar_binary(100, 0, {99, 42, 0}));
  write_file(t / "cifar-100-binary/test.bin", cifar_binary(100, 5, {7}));
  ImageDataset ds = load_dataset(spec_for(t.path()));
  EXPECT_EQ(ds.num_classes, 100);
  EXPECT_EQ(ds.labels, (std::vector<int64_t>{99, 42, 0}));
  EXPECT_EQ(ds.class_names[99], "worm");
  expect_pattern(ds, 1, 1);
  EXPECT_EQ(load_dataset(spec_for(t.path(), "test", "cifar100")).labels, (std::vector<int64_t>{7}));
}

TEST(CifarBinary, TruncatedRecordNamesTheFile) {
  TempDir t;
  write_cifar10_binary(t.path());
  auto bytes = cifar_binary(10, 0, {1, 2});
  bytes.resize(bytes.size() - 100);
  write_file(t / "data_batch_3.bin", bytes);
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path())), t / "data_batch_3.bin", "truncated record");
}

TEST(CifarBinary, LabelOutOfRangeNamesTheFile) {
  TempDir t;
  write_cifar10_binary(t.path());
  write_file(t / "test_batch.bin", cifar_binary(10, 0, {3, 10}));
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path(), "test")), t / "test_batch.bin", "record 1", "label 10");
  write_file(t / "cifar-100-binary/train.bin", cifar_binary(100, 0, {100}));
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path(), "train", "cifar100")), "train.bin", "label 100");
}

TEST(CifarBinary, MissingFilesAreListed) {
  TempDir t;
  write_file(t / "cifar-10-batches-bin/data_batch_1.bin", cifar_binary(10, 0, {1}));
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path(), "train", "cifar10")), "data_batch_2.bin",
                        "data_batch_5.bin");
  TempDir empty;
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(empty.path(), "train", "cifar10")), "cifar-10-batches-py",
                        "cifar-10-batches-bin", "cifar-10-python.tar.gz");
}

TEST(CifarPickle, ReadsARealPythonPickle) {
  // Written by Python 3's pickle.dump(protocol=2) of a dict holding a numpy
  // array (tests/datasets/golden/make_cifar_pickles.py).
  std::string path = golden_path("tiny_cifar10_batch.pkl");
  std::vector<uint8_t> bytes = read_file(path);
  ASSERT_FALSE(bytes.empty()) << "missing golden file " << path;
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  decode_cifar_pickle(bytes, 10, path, images, labels);
  EXPECT_EQ(labels, (std::vector<int64_t>{3, 9, 0}));
  ASSERT_EQ(images.size(), 3u * 3072);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3072; ++j) ASSERT_EQ(images[i * 3072 + j], pattern(i, j));

  PyRef root = unpickle(bytes, path);
  ASSERT_EQ(root->kind, PyValue::Kind::Dict);
  ASSERT_TRUE(root->get("batch_label"));
  EXPECT_EQ(root->get("batch_label")->s, "tiny golden batch");
  EXPECT_EQ(root->get("filenames")->items.at(2)->s, "c.png");
}

TEST(CifarPickle, ReadsARealCifar100Pickle) {
  TempDir t;
  write_file(t / "cifar-100-python/train", read_file(golden_path("tiny_cifar100_train.pkl")));
  ImageDataset ds = load_dataset(spec_for(t.path()));  // auto: finds cifar-100-python/
  EXPECT_EQ(ds.num_classes, 100);
  EXPECT_EQ(ds.labels, (std::vector<int64_t>{99, 42}));
  expect_pattern(ds, 1, 1);
}

TEST(CifarPickle, ReadsPython2CPickleLayoutFromTheReferenceRoot) {
  TempDir t;
  write_cifar10_python(t / "cifar-10-batches-py");
  // Also a binary copy: the python version is preferred, as the reference used it.
  write_cifar10_binary(t / "cifar-10-batches-bin");
  EXPECT_EQ(detect_format(t.path(), "train"), "cifar10");
  ImageDataset ds = load_dataset(spec_for(t.path()));
  expect_cifar10_train(ds);
  EXPECT_NE(ds.name.find("python"), std::string::npos) << ds.name;
}

TEST(CifarPickle, LongMemoAndLong1Opcodes) {
  auto bytes = py2_cifar_pickle(4, {5, 6, 7}, "labels", /*pad_memo=*/true);
  std::vector<uint8_t> images;
  std::vector<int64_t> labels;
  decode_cifar_pickle(bytes, 10, "mem.pkl", images, labels);
  EXPECT_EQ(labels, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(images[3072 + 5], pattern(5, 5));
  PyRef root = unpickle(bytes, "mem.pkl");
  EXPECT_EQ(root->get("filenames")->items.size(), 300u);
  EXPECT_EQ(root->get("dtype_again")->s, "numpy.dtype");
  EXPECT_EQ(root->get("late")->s, "dtype_again");
}

TEST(CifarPickle, RejectsWhatItDoesNotUnderstand) {
  std::vector<uint8_t> img;
  std::vector<int64_t> lab;
  // A global other than numpy's: never executed, rejected by name.
  std::string evil = "\x80\x02" "cos\nsystem\n" "U\x02ls\x85R.";
  std::vector<uint8_t> evil_b(evil.begin(), evil.end());
  EXPECT_ERROR_MENTIONS(decode_cifar_pickle(evil_b, 10, "evil.pkl", img, lab), "evil.pkl",
                        "unsupported global os.system");
  // A list instead of a dict.
  std::vector<uint8_t> list = {0x80, 2, ']', 'K', 1, 'a', '.'};
  EXPECT_ERROR_MENTIONS(decode_cifar_pickle(list, 10, "list.pkl", img, lab), "list.pkl", "dict");
  // Protocol 0 text pickles use opcodes we do not read.
  std::string p0 = "(dp0\nS'data'\np1\n.";
  EXPECT_ERROR_MENTIONS(decode_cifar_pickle(std::vector<uint8_t>(p0.begin(), p0.end()), 10, "p0.pkl", img, lab),
                        "p0.pkl", "not a pickle");
  // A cut file.
  auto cut = read_file(golden_path("tiny_cifar10_batch.pkl"));
  cut.resize(cut.size() / 2);
  EXPECT_ERROR_MENTIONS(decode_cifar_pickle(cut, 10, "cut.pkl", img, lab), "cut.pkl", "truncated");
  // Wrong keys: a CIFAR-100 batch read as CIFAR-10.
  auto c100 = py2_cifar_pickle(0, {1}, "fine_labels");
  EXPECT_ERROR_MENTIONS(decode_cifar_pickle(c100, 10, "c100.pkl", img, lab), "c100.pkl", "'labels'",
                        "fine_labels");
  // Labels out of range.
  auto bad = py2_cifar_pickle(0, {1, 12});
  EXPECT_ERROR_MENTIONS(decode_cifar_pickle(bad, 10, "bad.pkl", img, lab), "bad.pkl", "label 1 is 12");
}

TEST(CifarArchive, OfficialPythonArchiveByNameOrPath) {
  TempDir src, t;
  write_cifar10_python(src / "cifar-10-batches-py");
  write_file(src / "cifar-10-batches-py/batches.meta", {0x80, 2, '}', '.'});
  testing::make_tar_gz(t / "cifar-10-python.tar.gz", src.path(), "cifar-10-batches-py");
  ImageDataset a = load_dataset(spec_for(t.path()));  // a root holding the archive
  expect_cifar10_train(a);
  EXPECT_NE(a.name.find("archive"), std::string::npos);
  ImageDataset b = load_dataset(spec_for(t / "cifar-10-python.tar.gz", "test"));  // the archive itself
  EXPECT_EQ(b.labels, (std::vector<int64_t>{1, 2, 3}));
  expect_pattern(b, 0, 100);
}

TEST(CifarArchive, BinaryArchiveUnderAnyName) {
  TempDir src, t;
  write_cifar10_binary(src / "cifar-10-batches-bin");
  testing::make_tar_gz(t / "my_download.tgz", src.path(), "./cifar-10-batches-bin");
  expect_cifar10_train(load_dataset(spec_for(t / "my_download.tgz")));
}

TEST(CifarArchive, Cifar100BinaryArchive) {
  TempDir src, t;
  write_file(src / "cifar-100-binary/train.bin", cifar_binary(100, 0, {98, 1}));
  write_file(src / "cifar-100-binary/test.bin", cifar_binary(100, 0, {5}));
  testing::make_tar_gz(t / "cifar-100-binary.tar.gz", src.path(), "cifar-100-binary");
  EXPECT_EQ(load_dataset(spec_for(t.path())).labels, (std::vector<int64_t>{98, 1}));
}

TEST(CifarArchive, TruncatedOrIncompleteArchiveNamesIt) {
  TempDir src, t;
  write_cifar10_python(src / "cifar-10-batches-py");
  testing::make_tar_gz(t / "cifar-10-python.tar.gz", src.path(), "cifar-10-batches-py");
  auto bytes = read_file(t / "cifar-10-python.tar.gz");
  bytes.resize(bytes.size() / 2);
  write_file(t / "cifar-10-python.tar.gz", bytes);
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path())), "cifar-10-python.tar.gz");

  TempDir src2, t2;
  write_file(src2 / "cifar-10-batches-py/data_batch_1", py2_cifar_pickle(0, {1}));
  testing::make_tar_gz(t2 / "cifar-10-python.tar.gz", src2.path(), "cifar-10-batches-py");
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t2.path())), "cifar-10-python.tar.gz", "data_batch_2");
}

TEST(CifarArchive, NotATarArchive) {
  TempDir t;
  testing::write_gz(t / "cifar-10-python.tar.gz", std::vector<uint8_t>(2048, 'x'));
  EXPECT_ERROR_MENTIONS(load_dataset(spec_for(t.path())), "cifar-10-python.tar.gz", "not a tar archive");
}

}  // namespace
}  // namespace advcl::data
