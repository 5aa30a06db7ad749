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
#include <string>
#include <vector>

#include "advcl/attacks/pgd.h"
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/step/step_context.h"
#include "engine/tensor.h"
#include "nn/sgd.h"

namespace advcl::method {

// AdvCL's batch-norm statistic sets, in checkpoint order (bn_list.0, .1, .2):
// the clean views, the contrastive adversarial view x_cl, the pseudo-label
// adversarial view x_ce.
enum AdvclBnSet : int { kAdvclNormal = 0, kAdvclPgd = 1, kAdvclPgdCe = 2 };
inline const std::vector<std::string> kAdvclBnSetNames{"normal", "pgd", "pgd_ce"};

struct AdvclStepOptions {
  double epsilon = 8.0 / 255;
  double step_size = 2.0 / 255;
  int iterations = 5;
  double radius = 8;  // high-pass radius
  double temperature = 0.5;
  double base_temperature = 0.07;
  double ce_weight = 0.2;
  // The paper's ablations (docs/method.md section 14): without the
  // high-frequency view (SupCon over x_cl, x1, x2), and without pseudo-labels
  // (no x_ce attack and no CE term: the loss is SupCon alone).
  bool high_frequency_view = true;
  bool pseudo_labels = true;
};

struct AdvclBatch {
  Tensor x1, x2, x_org;         // float [B, C, H, W] in [0, 1]
  std::vector<Tensor> pseudo;   // per pseudo-label head: int64 [B]
};

struct AdvclStepResult {
  // 0-D tensors on the model's device (reading them is the caller's choice:
  // the training loop reads them only on the steps it logs), over the global
  // batch under data parallelism. `ce` is undefined without the pseudo-label term.
  Tensor loss, contrastive, ce;
  Tensor x_cl, x_ce, x_hfc;  // the views the step trained on
};

// Random starts of the two attacks: x_org + U(-eps, eps), independent for x_cl
// and x_ce; `key.sample` is the epoch position of the batch's first image.
std::vector<Tensor> advcl_attack_starts(const Tensor& x_org, const AdvclStepOptions& opt, RngKey key);

// The whole step from given attack starts (model in training mode afterwards).
// Data parallel through `ctx` (advcl/step/step_context.h): SupCon over the
// gathered global batch, the pseudo-label CE (a mean over this rank's images)
// scaled by the rank's share, gradients averaged before the SGD step.
AdvclStepResult advcl_step(ContrastiveModel& model, nn::Sgd& sgd, const AdvclBatch& batch,
                           const std::vector<Tensor>& starts, const AdvclStepOptions& opt,
                           StepContext& ctx = StepContext::one_process());

}  // namespace advcl::method
