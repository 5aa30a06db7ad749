// One SimCLR training step (`advcl simclr`): both views through the encoder
// and projection head with one BN set, NT-Xent (SupCon's SimCLR case with
// base temperature = temperature), backward, SGD step.
#pragma once
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/step/step_context.h"
#include "engine/tensor.h"
#include "nn/sgd.h"

namespace advcl::method {

struct SimclrStepOptions {
  double temperature = 0.5;
};

// Trains on views x1, x2 (float [B, C, H, W] on the model's device); returns
// the loss as a 0-D tensor on that device (not read: no host round trip).
// Data parallel through `ctx`: the loss over the gathered global batch, the
// gradients averaged over the ranks before the step.
Tensor simclr_step(ContrastiveModel& model, nn::Sgd& sgd, const Tensor& x1, const Tensor& x2,
                   const SimclrStepOptions& opt, StepContext& ctx = StepContext::one_process());

}  // namespace advcl::method
