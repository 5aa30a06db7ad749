// The pretraining model: the plain ResNet-18 backbone (nn/resnet.h) and the
// heads the contrastive methods train on its pooled feature. The heads are
// composed here, not in nn/, because which heads a model has is a method's
// choice:
//
//   head_proj  nn::ProjectionHead(8w -> proj_dim), L2-normalised rows, one BN
//              set; every method's contrastive loss (SimCLR, ACL, AdvCL);
//   fc_%03d    one Linear(8w, k) per pseudo-label granularity k, AdvCL's
//              pseudo-label classifiers (none for SimCLR and ACL).
// The reference's `head_pred` (used by no loss) and `head_ce` (never used)
// are not built.
//
// The names are the reference's: the backbone's unprefixed (`conv1.weight`,
// `layer1.0.conv1.weight`, ...), then `fc_002` ... `fc_500`, then
// `head_proj.{0,1,3}`, so ContrastiveModel() (width 64, 3 BN sets, five
// classifiers) has the reference's 339 tensors in the reference's order.
// Initialisation is keyed by full name (nn/module.h): the backbone draws
// what a bare nn::ResNet18 of the same seed draws, and each head what it
// would draw were the whole model initialised at once.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor.h"
#include "nn/batch_norm.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "nn/projection_head.h"
#include "nn/resnet.h"

namespace advcl::method {

struct ContrastiveModelOptions {
  nn::ResNetOptions backbone;  // its seed initialises the heads too
  int64_t proj_dim = 128;      // head_proj's output
  std::vector<int64_t> pseudo_classes = {2, 10, 50, 100, 500};  // one classifier fc_%03d per entry; empty: none
};

class ContrastiveModel : public nn::Module {
 public:
  explicit ContrastiveModel(const ContrastiveModelOptions& options = {});

  // The backbone's pooled feature [V*B, 8w] of V views stacked along the batch.
  Tensor features(const Tensor& x, const nn::BnSets& sets) { return backbone.features(x, sets); }
  // head_proj of the features, L2-normalised: [V*B, proj_dim]; each of the
  // `views` views gets its own BN statistics.
  Tensor project(const Tensor& features, int64_t views) { return head_proj.forward(features, views); }
  // The logits of each pseudo-label classifier, in options.pseudo_classes order.
  std::vector<Tensor> pseudo_logits(const Tensor& features);

  int64_t feature_dim() const { return backbone.feature_dim(); }
  const ContrastiveModelOptions& options() const { return options_; }

  nn::ResNet18 backbone;
  std::vector<std::unique_ptr<nn::Linear>> fc;  // fc_002 ... in options.pseudo_classes order
  nn::ProjectionHead head_proj;

 private:
  ContrastiveModelOptions options_;
};

}  // namespace advcl::method
