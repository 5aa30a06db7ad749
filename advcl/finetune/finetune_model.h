// The finetuned model: the pretrained encoder (one BN statistic set) and a
// linear classifier on its pooled feature, held as one module so that one
// checkpoint holds everything `advcl eval` needs.
//
// State-dict names: the encoder's own (`conv1.weight`, `bn1.weight`,
// `layer1.0.conv1.weight`, ...) and the reference's LinearClassifier names
// `fc.weight`, `fc.bias`. (The encoder is the plain backbone, nn/resnet.h:
// the pretraining heads, `fc_002` and the like, stay behind in the
// pretraining model, advcl/pretrain/contrastive_model.h.)
#pragma once
#include <memory>
#include <string>

#include "nn/layers.h"
#include "nn/module.h"
#include "nn/resnet.h"

namespace advcl::method {

class FinetuneModel : public nn::Module {
 public:
  // `encoder` must have a single BN set; the classifier is initialised from `seed`.
  FinetuneModel(std::unique_ptr<nn::ResNet18> encoder, int64_t classes, uint64_t seed);

  // Logits [N, classes] of images [N, C, H, W], in the model's current mode.
  Tensor logits(const Tensor& images);
  // The pooled feature [N, 8w].
  Tensor features(const Tensor& images);

  nn::ResNet18& encoder() { return *encoder_; }
  int64_t num_classes() const { return classifier.fc.out_features(); }

 private:
  std::unique_ptr<nn::ResNet18> encoder_;  // before `classifier`: its feature size sizes the classifier

 public:
  nn::LinearClassifier classifier;
};

}  // namespace advcl::method
