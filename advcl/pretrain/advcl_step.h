// One AdvCL training step (docs/method.md sections 9 and 10: the attack and
// the training loss).
//
//   x_HFC = high-pass(x_org)
//   x_cl, x_ce = PGD from x_org + U(-eps, eps), 5 iterations of 2/255 sign
//     steps on  contrastive(x_cl, x1, x2, x_HFC) + w * mean_k CE(fc_k(x_ce))
//   loss = supcon(proj(x_cl), proj(x1), proj(x2), proj(x_HFC)) + w * mean_k CE_mean(fc_k(x_ce), pseudo_k)
//   SGD step.
//
// BN sets: x_cl -> `pgd`, x_ce -> `pgd_ce`, x1/x2/x_HFC -> `normal`; every
// view normalised with its own batch statistics. The clean views' features
// cannot change during the attack, so they are computed once per step (no
// gradient) instead of once per iteration: the attack's gradients are the
// same; only the `normal` set's and head_proj's running statistics are
// updated fewer times (they are never used later). The `pgd` set's running
// statistics are updated 6 times per step, as in the reference.
#pragma once
#include <functional>
#include <vector>

#include "advcl/pgd.h"
#include "engine/tensor.h"
#include "nn/resnet.h"
#include "nn/sgd.h"

namespace advcl::method {

struct AdvclStepOptions {
  double epsilon = 8.0 / 255;
  double step_size = 2.0 / 255;
  int iterations = 5;
  double radius = 8;  // high-pass radius
  double temperature = 0.5;
  double base_temperature = 0.07;
  double ce_weight = 0.2;
  // Data parallel (dist/, docs/distributed.md); the defaults are one process.
  // Applied to every view's projections before SupCon, e.g. dist::all_gather_rows,
  // so that the contrastive denominator runs over the global batch.
  std::function<Tensor(const Tensor&)> gather;
  double ce_scale = 1;  // multiplies the pseudo-label CE (a local mean): dist::local_loss_scale
  // Runs the backward pass of the loss; the default is engine backward().
  // Data parallel: dist::GradientReducer::backward, which also averages the
  // gradients over the ranks (overlapped with the backward pass).
  std::function<void(const Tensor& loss)> backward;
};

struct AdvclBatch {
  Tensor x1, x2, x_org;         // float [B, C, H, W] in [0, 1]
  std::vector<Tensor> pseudo;   // per pseudo-label head: int64 [B]
};

struct AdvclStepResult {
  // 0-D tensors on the model's device (reading them is the caller's choice:
  // the training loop reads them only on the steps it logs).
  Tensor loss, contrastive, ce;
  Tensor x_cl, x_ce, x_hfc;  // the views the step trained on
};

// Random starts of the two attacks: x_org + U(-eps, eps), independent for x_cl
// and x_ce; `key.sample` is the epoch position of the batch's first image.
std::vector<Tensor> advcl_attack_starts(const Tensor& x_org, const AdvclStepOptions& opt, RngKey key);

// The whole step from given attack starts (model in training mode afterwards).
AdvclStepResult advcl_step(nn::ResNet18& model, nn::Sgd& sgd, const AdvclBatch& batch,
                           const std::vector<Tensor>& starts, const AdvclStepOptions& opt);

}  // namespace advcl::method
