// MNIST and Fashion-MNIST in the IDX format (LeCun's), gzipped or not:
//   {train,t10k}-images-idx3-ubyte[.gz]: magic 0x00000803, N, rows, cols
//   (big-endian int32), then N*rows*cols bytes, row-major;
//   {train,t10k}-labels-idx1-ubyte[.gz]: magic 0x00000801, N, then N bytes 0..9.
// Found in root, root/raw, root/FashionMNIST/raw or root/MNIST/raw (the
// torchvision layouts), root/fashion-mnist or root/mnist. The 28x28 grey images are fitted as requested
// (datasets/image_fit.h): for a 32x32 model, zero-padded by 2 on each side by
// default (--fit auto/pad) or resized (--fit resize); --channels 3 replicates grey.
#pragma once
#include <string>
#include <vector>

#include "datasets/dataset_spec.h"
#include "datasets/image_dataset.h"

namespace advcl::data {

class ByteStream;

// The images and labels files for `split` ("train" or "test"), or false.
bool find_idx(const std::string& root, const std::string& split, std::string& images, std::string& labels,
              std::vector<std::string>* looked_for = nullptr);

// fashion: class names of Fashion-MNIST, else the digits "0".."9".
ImageDataset load_idx(const DatasetSpec& spec, bool fashion);

// The parsing half of load_idx: a labels file and an images file, from any
// byte source (the fuzz harness passes memory). Errors name the streams.
ImageDataset decode_idx(ByteStream& images, ByteStream& labels, const DatasetSpec& spec, bool fashion);

const std::vector<std::string>& fashion_mnist_class_names();

}  // namespace advcl::data
