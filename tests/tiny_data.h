// Tiny in-memory data and models for the stage tests (the main suite and the
// multi-rank one): a labelled image set of pseudo-random bytes and a ResNet-18
// backbone of width 2.
#pragma once
#include <cstdint>
#include <memory>

#include "datasets/image_dataset.h"
#include "engine/rng.h"
#include "nn/resnet.h"

namespace advcl::test {

// n grey 8x8 images of bytes from the counter-based generator (the same on
// every rank), labels i % classes.
inline std::shared_ptr<const data::ImageDataset> tiny_images(int64_t n, int64_t classes, uint32_t seed) {
  auto ds = std::make_shared<data::ImageDataset>();
  ds->name = "tiny";
  ds->n = n;
  ds->channels = 1;
  ds->height = ds->width = 8;
  ds->num_classes = classes;
  for (int64_t k = 0; k < classes; ++k) ds->class_names.push_back("c" + std::to_string(k));
  RngKey key{seed, 900, 0, 0};
  for (int64_t i = 0; i < n * 64; ++i) ds->images.push_back(static_cast<uint8_t>(key.word(static_cast<uint64_t>(i))));
  for (int64_t i = 0; i < n; ++i) ds->labels.push_back(i % classes);
  ds->check();
  return ds;
}

// ResNet-18 of width 2 for 1-channel images, one BN set (an encoder as
// load_encoder builds it), with optional synchronised BN.
inline nn::ResNetOptions tiny_encoder(std::shared_ptr<const nn::BatchNormSync> sync = nullptr) {
  nn::ResNetOptions mo;
  mo.width = 2;
  mo.in_channels = 1;
  mo.num_bn_sets = 1;
  mo.seed = 5;
  mo.bn_sync = std::move(sync);
  return mo;
}

}  // namespace advcl::test
