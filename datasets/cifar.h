// CIFAR-10 and CIFAR-100 in both official distributions:
//   binary: cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin
//           (records: 1 label byte + 3072 image bytes, CHW);
//           cifar-100-binary/train.bin, test.bin (2 label bytes coarse, fine
//           + 3072; we use the fine label)
//   python: cifar-10-batches-py/data_batch_{1..5}, test_batch;
//           cifar-100-python/train, test (pickled dicts, see datasets/pickle.h;
//           keys b'data' [N, 3072] uint8 and b'labels' / b'fine_labels')
// Each as an extracted folder or as the official .tar.gz archive.
#pragma once
#include <string>
#include <vector>

#include "datasets/dataset_spec.h"
#include "datasets/image_dataset.h"

namespace advcl::data {

struct CifarSource {
  bool python = false;   // python pickles, else binary records
  bool archive = false;  // `path` is a .tar.gz, else a folder holding the files
  std::string path;
  std::string describe() const;
};

// Finds a CIFAR-`classes` distribution (10 or 100) for `split` at `root`: the
// folder of batch files itself, a root holding the official folder (as
// torchvision's root=), an official archive, or a root holding one. The python
// version is preferred when both are present. Returns nothing if none is
// found; `looked_for` collects the candidates for the error message.
bool find_cifar(const std::string& root, int classes, const std::string& split, CifarSource& out,
                std::vector<std::string>* looked_for = nullptr);

// Loads the split (train: all five batches in order; test) of CIFAR-10/100.
ImageDataset load_cifar(const DatasetSpec& spec, int classes);

// Decoders for one file's bytes; `name` is used in errors. Append to images/labels.
void decode_cifar_binary(const std::vector<uint8_t>& data, int classes, const std::string& name,
                         std::vector<uint8_t>& images, std::vector<int64_t>& labels);
void decode_cifar_pickle(const std::vector<uint8_t>& data, int classes, const std::string& name,
                         std::vector<uint8_t>& images, std::vector<int64_t>& labels);

const std::vector<std::string>& cifar10_class_names();
const std::vector<std::string>& cifar100_class_names();  // the 100 fine labels

}  // namespace advcl::data
