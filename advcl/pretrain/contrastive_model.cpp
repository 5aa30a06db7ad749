#include "advcl/pretrain/contrastive_model.h"

#include <cstdio>
#include <string>

namespace advcl::method {

namespace {

// The reference's heads normalise as its backbone does (ghost groups,
// synchronised), with a single statistic set.
nn::BatchNormOptions head_batch_norm(const nn::ResNetOptions& backbone) {
  nn::BatchNormOptions bn = backbone.batch_norm();
  bn.num_sets = 1;
  return bn;
}

}  // namespace

ContrastiveModel::ContrastiveModel(const ContrastiveModelOptions& options)
    : backbone(options.backbone),
      head_proj(backbone.feature_dim(), options.proj_dim, head_batch_norm(options.backbone)),
      options_(options) {
  // The backbone's names stay unprefixed; the heads follow it in the
  // reference's order, the classifiers, then head_proj. The backbone
  // initialised itself: each head draws, under its full name, what
  // initialising the whole model would give it.
  register_module("", backbone);
  const uint64_t seed = options.backbone.seed;
  for (int64_t k : options.pseudo_classes) {
    if (k <= 0) fail("ContrastiveModel: pseudo-label class counts must be positive, got ", k);
    char name[32];
    std::snprintf(name, sizeof name, "fc_%03lld", static_cast<long long>(k));
    fc.push_back(std::make_unique<nn::Linear>(feature_dim(), k));
    register_module(name, *fc.back());
    fc.back()->init_parameters(seed, name);
  }
  register_module("head_proj", head_proj);
  head_proj.init_parameters(seed, "head_proj");
}

std::vector<Tensor> ContrastiveModel::pseudo_logits(const Tensor& features) {
  std::vector<Tensor> out;
  for (auto& f : fc) out.push_back(f->forward(features));
  return out;
}

}  // namespace advcl::method
