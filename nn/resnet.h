// ResNet-18, CIFAR variant: the plain backbone, with the reference's names.
//
//   stem:   conv1 3x3/1 (no bias) -> bn1 -> ReLU   (no max-pool)
//   layer1..layer4: two BasicBlocks each, w, 2w, 4w, 8w channels (w = width,
//           64 in the paper), strides 1, 2, 2, 2 on the first block's conv1;
//           shortcut `downsample.conv` (1x1, stride s) + `downsample.bn` where
//           the shape changes
//   global average pool -> feature [N, 8w]
// Every BN has options.num_bn_sets statistic sets; which sets there are and
// what they are called is the method's business (advcl/pretrain/method.h), as
// are the heads a method trains on the feature: advcl/pretrain/
// contrastive_model.h composes this backbone with AdvCL's projection head and
// pseudo-label classifiers, and advcl/finetune/finetune_model.h with a linear
// classifier, both keeping these names unprefixed.
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
  int64_t bn_group_size = 0;  // ghost statistics, see nn/batch_norm.h (0: whole view)
  std::shared_ptr<const BatchNormSync> bn_sync;
  uint64_t seed = 0;  // initialisation
  ActivationLayout layout = ActivationLayout::Auto;  // not part of the state dict (nor of to_json)
  // The options that shape the state dict, as a JSON object (for checkpoint metadata).
  std::string to_json() const;
  // The options of every backbone BN: num_bn_sets sets, ghost groups, sync. A
  // head that normalises as the backbone does takes these with one set.
  BatchNormOptions batch_norm() const;
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

class ResNet18 : public Module {
 public:
  explicit ResNet18(const ResNetOptions& options = {});

  // The pooled feature [V*B, 8w] of V views stacked along the batch; view v
  // goes through every BN with set sets.per_view[v]. x is NCHW images;
  // inside, the activations take options.layout.
  Tensor features(const Tensor& x, const BnSets& sets);
  // Whether features(x) keeps its activations channels-last.
  bool channels_last_for(const Tensor& x) const;

  int64_t feature_dim() const { return 8 * options_.width; }
  const ResNetOptions& options() const { return options_; }
  // The state-dict name prefixes of the backbone (stem and the four stages):
  // loading these alone takes the encoder out of a model composed around it.
  static const std::vector<std::string>& encoder_prefixes();

  Conv2d conv1;
  BatchNorm bn1;
  std::vector<std::unique_ptr<BasicBlock>> blocks;  // layer1.0, layer1.1, ..., layer4.1

 private:
  ResNetOptions options_;
};

}  // namespace advcl::nn
