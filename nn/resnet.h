// ResNet-18, CIFAR variant, with the reference's AdvCL heads and names.
//
//   stem:   conv1 3x3/1 (no bias) -> bn1 -> ReLU   (no max-pool)
//   layer1..layer4: two BasicBlocks each, w, 2w, 4w, 8w channels (w = width,
//           64 in the paper), strides 1, 2, 2, 2 on the first block's conv1;
//           shortcut `downsample.conv` (1x1, stride s) + `downsample.bn` where
//           the shape changes
//   global average pool -> feature [N, 8w]
//   heads (options.heads): `fc_002` ... `fc_500` (Linear(8w, k) per
//           pseudo-label granularity) and `head_proj`:
//           0: Linear(8w, 8w) -> 1: BN1d(8w) -> ReLU -> 3: Linear(8w, 128),
//           output L2-normalised.
// The reference's `head_pred` (unused by any loss) and `head_ce` (never used)
// are not built. Backbone BNs have options.num_bn_sets statistic sets (3 for
// pretraining: normal, pgd, pgd_ce; 1 for finetuning); head BNs have one set
// but still per-view statistics.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/batch_norm.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace advcl::nn {

// Where a network keeps its activations between layers (engine/ops/layout.h).
// Auto: channels-last where the convolutions run on oneDNN (float32 on the
// CPU: no reorder into the library's layout and back at every layer),
// channels-first elsewhere (float64, the GPU). The result is the same either
// way up to float rounding; the state dict does not change.
enum class ActivationLayout { Auto, ChannelsFirst, ChannelsLast };

struct ResNetOptions {
  int64_t width = 64;       // channels of the stem and layer1
  int64_t in_channels = 3;  // 3 (CIFAR, STL) or 1 (MNIST-like)
  int num_bn_sets = 3;
  bool heads = true;  // head_proj and the pseudo-label classifiers
  int64_t proj_dim = 128;
  std::vector<int64_t> pseudo_classes = {2, 10, 50, 100, 500};  // head fc_%03d per entry
  int64_t bn_group_size = 0;  // ghost statistics, see nn/batch_norm.h (0: whole view)
  std::shared_ptr<const BatchNormSync> bn_sync;
  uint64_t seed = 0;  // initialisation
  ActivationLayout layout = ActivationLayout::Auto;  // not part of the state dict (nor of to_json)
  // The options that shape the state dict, as a JSON object (for checkpoint metadata).
  std::string to_json() const;
};

// Conv 1x1 + BN shortcut.
class Downsample : public Module {
 public:
  Downsample(int64_t in, int64_t out, int stride, const BatchNormOptions& bn);
  Tensor forward(const Tensor& x, const BnSets& sets, bool channels_last);
  Conv2d conv;
  BatchNorm bn;
};

class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in, int64_t out, int stride, const BatchNormOptions& bn);
  Tensor forward(const Tensor& x, const BnSets& sets, bool channels_last);
  Conv2d conv1;
  BatchNorm bn1;
  Conv2d conv2;
  BatchNorm bn2;
  std::unique_ptr<Downsample> downsample;  // null where the shape is kept
};

// Linear -> BN1d -> ReLU -> Linear, then L2-normalised rows.
class ProjectionHead : public Module {
 public:
  ProjectionHead(int64_t in, int64_t out, const BatchNormOptions& bn);
  // `views`: how many views are stacked in `features` (each gets its own BN statistics).
  Tensor forward(const Tensor& features, int64_t views);
  Linear fc0;
  BatchNorm bn1;
  Linear fc3;
};

class ResNet18 : public Module {
 public:
  explicit ResNet18(const ResNetOptions& options = {});

  // The pooled feature [V*B, 8w] of V views stacked along the batch; view v
  // goes through every backbone BN with set sets.per_view[v]. x is NCHW
  // images; inside, the activations take options.layout.
  Tensor features(const Tensor& x, const BnSets& sets);
  // Whether features(x) keeps its activations channels-last.
  bool channels_last_for(const Tensor& x) const;
  // head_proj of the features, L2-normalised: [V*B, proj_dim].
  Tensor project(const Tensor& features, int64_t views);
  // The logits of each pseudo-label classifier, in options.pseudo_classes order.
  std::vector<Tensor> pseudo_logits(const Tensor& features);

  int64_t feature_dim() const { return 8 * options_.width; }
  const ResNetOptions& options() const { return options_; }
  // The state-dict name prefixes of the encoder (stem and the four stages).
  static const std::vector<std::string>& encoder_prefixes();

  Conv2d conv1;
  BatchNorm bn1;
  std::vector<std::unique_ptr<BasicBlock>> blocks;  // layer1.0, layer1.1, ..., layer4.1
  std::vector<std::unique_ptr<Linear>> fc;         // fc_002 ... (options.heads)
  std::unique_ptr<ProjectionHead> head_proj;       // (options.heads)

 private:
  ResNetOptions options_;
};

}  // namespace advcl::nn
