// STL-10, binary version (stl10_binary/ or the official stl10_binary.tar.gz):
// train_X.bin / train_y.bin (5000), test_X.bin / test_y.bin (8000),
// unlabeled_X.bin (100000). Images are 3x96x96 stored column-major: for each
// image, for each channel, the 96 pixels of column 0 top to bottom, then
// column 1, ... (MATLAB order). Labels are bytes 1..10, mapped to 0..9.
// Splits: train, test, unlabeled (labels -1), train+unlabeled (train first,
// as torchvision's STL10(split='train+unlabeled')).
// With --size 32 the 96x96 images are resized as described in
// datasets/image_fit.h, one image at a time as they are read.
#pragma once
#include <string>
#include <vector>

#include "datasets/dataset_spec.h"
#include "datasets/image_dataset.h"

namespace advcl::data {

class ByteStream;
class DatasetBuilder;

// The folder holding the .bin files, or an archive; empty if none was found
// (looked_for lists the candidates).
std::string find_stl10(const std::string& root, std::vector<std::string>* looked_for = nullptr);

ImageDataset load_stl10(const DatasetSpec& spec);

// One image in the file layout (column-major per channel) to CHW row-major.
void stl10_image_to_chw(const uint8_t* src, uint8_t* dst);

// The parsers load_stl10 uses, for any byte source (tests/fuzz/ passes memory):
// a label file (bytes 1..10 -> 0..9), and an image file read into `b` until
// its end (complete = true) or until `b` is full; returns the images read.
std::vector<int64_t> read_stl10_labels(ByteStream& in);
int64_t read_stl10_images(ByteStream& in, DatasetBuilder& b, bool& complete);

const std::vector<std::string>& stl10_class_names();

}  // namespace advcl::data
