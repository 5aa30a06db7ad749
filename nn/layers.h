// Convolution and linear layers, and the two parameter-free steps of the
// ResNet (ReLU, global average pooling) as plain functions.
#pragma once
#include <cstdint>

#include "engine/tensor.h"
#include "nn/module.h"

namespace advcl::nn {

// Conv2d without bias (every convolution of the ResNet is bias-free),
// weight [out, in, k, k], Kaiming normal fan_out init (ResNet's init).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel, int stride, int padding);
  // channels_last: x and the result are [N, H, W, C] (engine/ops/layout.h).
  Tensor forward(const Tensor& x, bool channels_last = false) const;
  Tensor weight;

 private:
  int stride_, padding_;
};

// y = x Wᵀ + b, weight [out, in], bias [out], PyTorch's default init
// (both uniform ±1/sqrt(in)).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features);
  Tensor forward(const Tensor& x) const;
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  Tensor weight, bias;
};

// The classifier of linear finetuning, named as the reference's
// LinearClassifier: `fc.weight`, `fc.bias`.
class LinearClassifier : public Module {
 public:
  LinearClassifier(int64_t feature_dim, int64_t num_classes, uint64_t seed);
  Tensor forward(const Tensor& features) const { return fc.forward(features); }
  Linear fc;
};

Tensor relu(const Tensor& x);
// [N, C, H, W] -> [N, C]
Tensor global_avg_pool(const Tensor& x, bool channels_last = false);

}  // namespace advcl::nn
