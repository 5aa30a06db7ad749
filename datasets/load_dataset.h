// The one entry point for datasets: load_dataset(spec) picks the reader from
// spec.format, or with format "auto" from what is found at spec.root:
//   cifar-10-batches-py/, cifar-10-batches-bin/, the batch files themselves,
//   cifar-10-{python,binary}.tar.gz             -> cifar10
//   cifar-100-python/, cifar-100-binary/, ...   -> cifar100
//   stl10_binary/, *_X.bin, stl10_binary.tar.gz -> stl10
//   {train,t10k}-images-idx3-ubyte[.gz]         -> fashion-mnist if the path
//                                                  names "fashion", else mnist
//   a folder of class folders                   -> folder
// So --data pointed at the root the reference PyTorch code used (holding
// cifar-10-batches-py/) just works.
//
// Example:
//   DatasetSpec spec;
//   spec.root = "/data";  spec.format = "auto";  spec.split = "train";
//   spec.size = 32;  spec.channels = 3;  spec.limit = 1000;
//   ImageDataset ds = load_dataset(spec);
//   std::printf("%s\n", ds.describe().c_str());
#pragma once
#include <string>
#include <vector>

#include "datasets/dataset_spec.h"
#include "datasets/image_dataset.h"

namespace advcl::data {

ImageDataset load_dataset(const DatasetSpec& spec);

// The format "auto" resolves to for spec.root (and split), or "" when nothing
// is recognised; `looked_for` collects what was tried.
std::string detect_format(const std::string& root, const std::string& split,
                          std::vector<std::string>* looked_for = nullptr);

// The recognised format names, for help texts.
const std::vector<std::string>& dataset_formats();

// Sets one command-line option on the spec. Names (without "--"): data,
// dataset (or format), split, limit, per-class, size, channels, fit. Returns
// false for a name that is not a dataset option; throws naming the option
// when the value is bad.
bool apply_dataset_option(DatasetSpec& spec, const std::string& name, const std::string& value);

// One line per option, for --help.
std::string dataset_options_help();

}  // namespace advcl::data
