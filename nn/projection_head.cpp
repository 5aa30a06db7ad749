#include "nn/projection_head.h"

#include "engine/ops/reduce.h"

namespace advcl::nn {

ProjectionHead::ProjectionHead(int64_t in, int64_t out, const BatchNormOptions& bn_opt)
    : fc0(in, in), bn1(in, bn_opt), fc3(in, out) {
  register_module("0", fc0);
  register_module("1", bn1);
  register_module("3", fc3);
}

Tensor ProjectionHead::forward(const Tensor& features, int64_t views) {
  Tensor h = bn1.forward(fc0.forward(features), BnSets::repeat(0, static_cast<int>(views)), false, /*then_relu=*/true);
  return ops::l2_normalize(fc3.forward(h));
}

}  // namespace advcl::nn
