// Image folders laid out as torchvision's ImageFolder expects:
// root/<class_name>/<image>.{png,jpg,jpeg,bmp} (extension case-insensitive).
// Classes are the sub-folders sorted by name (byte order, as Python's
// sorted()), labelled 0, 1, ...; files within a class are sorted by name too.
// If root/<split> is a folder (root/train, root/test), it is used instead of
// root. Images are decoded with stb_image to RGB (as torchvision's default
// loader converts to RGB), then fitted with --size/--channels/--fit
// (datasets/image_fit.h). Without --size all images must share one size.
#pragma once
#include <string>
#include <vector>

#include "datasets/dataset_spec.h"
#include "datasets/image_dataset.h"

namespace advcl::data {

ImageDataset load_image_folder(const DatasetSpec& spec);

// Decodes one image file to RGB CHW uint8; throws naming the file.
std::vector<uint8_t> decode_image_rgb(const std::string& path, int64_t& height, int64_t& width);

// The same for an encoded image in memory; `name` goes into the error.
std::vector<uint8_t> decode_image_rgb(const uint8_t* data, size_t size, const std::string& name, int64_t& height,
                                      int64_t& width);

bool is_image_file_name(const std::string& name);

}  // namespace advcl::data
