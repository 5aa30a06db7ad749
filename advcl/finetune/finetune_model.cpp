#include "advcl/finetune/finetune_model.h"

namespace advcl::method {

FinetuneModel::FinetuneModel(std::unique_ptr<nn::ResNet18> encoder, int64_t classes, uint64_t seed)
    : encoder_(std::move(encoder)), classifier(encoder_->feature_dim(), classes, seed) {
  if (encoder_->options().num_bn_sets != 1)
    fail("FinetuneModel: the encoder must have one BN set (load it with load_encoder), it has ",
         encoder_->options().num_bn_sets);
  if (classes < 2) fail("FinetuneModel: need at least 2 classes, got ", classes);
  // Empty names: the encoder's and the classifier's names stay as they are.
  register_module("", *encoder_);
  register_module("", classifier);
}

Tensor FinetuneModel::features(const Tensor& images) { return encoder_->features(images, nn::BnSets(0)); }

Tensor FinetuneModel::logits(const Tensor& images) { return classifier.forward(features(images)); }

}  // namespace advcl::method
