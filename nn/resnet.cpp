#include "nn/resnet.h"

#include <sstream>

#include "engine/ops/conv2d.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/layout.h"

namespace advcl::nn {

std::string ResNetOptions::to_json() const {
  std::ostringstream os;
  os << "{\"arch\":\"resnet18_cifar\",\"width\":" << width << ",\"in_channels\":" << in_channels
     << ",\"num_bn_sets\":" << num_bn_sets << ",\"bn_group_size\":" << bn_group_size << "}";
  return os.str();
}

BatchNormOptions ResNetOptions::batch_norm() const {
  BatchNormOptions bn;
  bn.num_sets = num_bn_sets;
  bn.group_size = bn_group_size;
  bn.sync = bn_sync;
  return bn;
}

Downsample::Downsample(int64_t in, int64_t out, int stride, const BatchNormOptions& bn_opt)
    : conv(in, out, 1, stride, 0), bn(out, bn_opt) {
  register_module("conv", conv);
  register_module("bn", bn);
}

Tensor Downsample::forward(const Tensor& x, const BnSets& sets, bool channels_last) {
  return bn.forward(conv.forward(x, channels_last), sets, channels_last);
}

BasicBlock::BasicBlock(int64_t in, int64_t out, int stride, const BatchNormOptions& bn_opt)
    : conv1(in, out, 3, stride, 1), bn1(out, bn_opt), conv2(out, out, 3, 1, 1), bn2(out, bn_opt) {
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("conv2", conv2);
  register_module("bn2", bn2);
  if (stride != 1 || in != out) {
    downsample = std::make_unique<Downsample>(in, out, stride, bn_opt);
    register_module("downsample", *downsample);
  }
}

Tensor BasicBlock::forward(const Tensor& x, const BnSets& sets, bool channels_last) {
  Tensor out = bn1.forward(conv1.forward(x, channels_last), sets, channels_last, /*then_relu=*/true);
  out = bn2.forward(conv2.forward(out, channels_last), sets, channels_last);
  Tensor identity = downsample ? downsample->forward(x, sets, channels_last) : x;
  return ops::add_relu(out, identity);
}

ResNet18::ResNet18(const ResNetOptions& options)
    : conv1(options.in_channels, options.width, 3, 1, 1), bn1(options.width, options.batch_norm()), options_(options) {
  if (options.width <= 0) fail("ResNet18: width must be positive, got ", options.width);
  if (options.in_channels <= 0) fail("ResNet18: in_channels must be positive, got ", options.in_channels);
  BatchNormOptions bn = options.batch_norm();
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  int64_t in = options.width;
  for (int stage = 0; stage < 4; ++stage) {
    int64_t out = options.width << stage;
    for (int b = 0; b < 2; ++b) {
      blocks.push_back(std::make_unique<BasicBlock>(in, out, (stage > 0 && b == 0) ? 2 : 1, bn));
      register_module("layer" + std::to_string(stage + 1) + "." + std::to_string(b), *blocks.back());
      in = out;
    }
  }
  init_parameters(options.seed);
}

Tensor ResNet18::features(const Tensor& x, const BnSets& sets) {
  if (x.dim() != 4 || x.size(1) != options_.in_channels)
    fail("ResNet18: expected images [N, ", options_.in_channels, ", H, W], got ", shape_str(x.shape()));
  const bool cl = channels_last_for(x);
  Tensor h = cl ? ops::to_channels_last(x) : x;
  h = bn1.forward(conv1.forward(h, cl), sets, cl, /*then_relu=*/true);
  for (auto& block : blocks) h = block->forward(h, sets, cl);
  return global_avg_pool(h, cl);
}

bool ResNet18::channels_last_for(const Tensor& x) const {
  switch (options_.layout) {
    case ActivationLayout::ChannelsFirst: return false;
    case ActivationLayout::ChannelsLast: return true;
    case ActivationLayout::Auto: break;
  }
  return ops::conv2d_runs_on_onednn(x);
}

const std::vector<std::string>& ResNet18::encoder_prefixes() {
  static const std::vector<std::string> p = {"conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4."};
  return p;
}

}  // namespace advcl::nn
