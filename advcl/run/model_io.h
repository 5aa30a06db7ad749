// Building the ResNet-18 a stage needs and recording its shape in checkpoint
// metadata, so that later stages rebuild the same model from the file alone.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "nn/resnet.h"

namespace advcl::cli {

// Metadata entries describing the model: width, in_channels, bn_sets, heads, pseudo_classes.
std::map<std::string, std::string> model_metadata(const nn::ResNetOptions& o);
// The options stored in a checkpoint's metadata (error naming the file if absent).
nn::ResNetOptions model_options_from(const std::string& checkpoint);
// Loads the encoder of a checkpoint (any stage) into a fresh single-BN-set
// model with BN set `bn_set` of the file (-1: the file's only set), eval mode.
// `bn_sync`: synchronised batch norm for a model that trains data-parallel (AFF).
std::unique_ptr<nn::ResNet18> load_encoder(const std::string& checkpoint, int bn_set,
                                           std::shared_ptr<const nn::BatchNormSync> bn_sync = nullptr);

}  // namespace advcl::cli
