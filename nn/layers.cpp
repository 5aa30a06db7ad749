#include "nn/layers.h"

#include "engine/ops/conv2d.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "engine/ops/reduce.h"

namespace advcl::nn {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int kernel, int stride, int padding)
    : stride_(stride), padding_(padding) {
  if (in_channels <= 0 || out_channels <= 0 || kernel <= 0 || stride <= 0 || padding < 0)
    fail("Conv2d: invalid geometry in=", in_channels, " out=", out_channels, " kernel=", kernel, " stride=", stride,
         " padding=", padding);
  weight = register_parameter("weight", Tensor::zeros({out_channels, in_channels, kernel, kernel}),
                              {InitKind::KaimingNormalFanOut, out_channels * kernel * kernel});
}

Tensor Conv2d::forward(const Tensor& x, bool channels_last) const {
  return ops::conv2d(x, weight, Tensor(), ops::Conv2dOptions{stride_, padding_, channels_last});
}

Linear::Linear(int64_t in_features, int64_t out_features) {
  if (in_features <= 0 || out_features <= 0)
    fail("Linear: invalid size in=", in_features, " out=", out_features);
  weight = register_parameter("weight", Tensor::zeros({out_features, in_features}),
                              {InitKind::UniformFanIn, in_features});
  bias = register_parameter("bias", Tensor::zeros({out_features}), {InitKind::UniformFanIn, in_features});
}

Tensor Linear::forward(const Tensor& x) const { return ops::linear(x, weight, bias); }

LinearClassifier::LinearClassifier(int64_t feature_dim, int64_t num_classes, uint64_t seed)
    : fc(feature_dim, num_classes) {
  register_module("fc", fc);
  init_parameters(seed);
}

Tensor relu(const Tensor& x) { return ops::relu(x); }
Tensor global_avg_pool(const Tensor& x, bool channels_last) { return ops::global_avg_pool(x, channels_last); }

}  // namespace advcl::nn
