// One SimCLR training step (`advcl simclr`): both views through the encoder
// and projection head with one BN set, NT-Xent (SupCon's SimCLR case with
// base temperature = temperature), backward, SGD step.
#pragma once
#include <functional>

#include "engine/tensor.h"
#include "nn/resnet.h"
#include "nn/sgd.h"

namespace advcl::method {

struct SimclrStepOptions {
  double temperature = 0.5;
  // Data parallel (docs/distributed.md); the defaults are one process.
  // Applied to each view's projections before the loss, e.g.
  // dist::all_gather_rows, so that the loss runs over the global batch.
  std::function<Tensor(const Tensor&)> gather;
  // Runs the backward pass; the default is engine backward(). Data
  // parallel: dist::GradientReducer::backward (averages the gradients).
  std::function<void(const Tensor& loss)> backward;
};

// Trains on views x1, x2 (float [B, C, H, W] on the model's device); returns
// the loss as a 0-D tensor on that device (not read: no host round trip).
Tensor simclr_step(nn::ResNet18& model, nn::Sgd& sgd, const Tensor& x1, const Tensor& x2,
                   const SimclrStepOptions& opt);

}  // namespace advcl::method
