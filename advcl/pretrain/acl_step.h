// One ACL training step (Jiang et al., NeurIPS 2020, "Robust Pre-Training by
// Adversarial Contrastive Learning"), its dual-stream variant ACL-DS as the
// authors' code runs it (docs/acl.md says where each choice comes from):
//
//   x1_adv, x2_adv = PGD from x + U(-eps, eps), 5 iterations of 2/255 sign
//     steps on  NT-Xent(proj(x1_adv), proj(x2_adv))  with the model in EVAL
//     mode through BN set `pgd` (running statistics, none updated)
//   loss = (w * NT-Xent(proj(x1_adv), proj(x2_adv))[pgd]
//           + (2 - w) * NT-Xent(proj(x1), proj(x2))[normal]) / 2,   w = 1
//   model in training mode, backward, optimiser step.
//
// Unlike AdvCL (advcl_step.h) there are no pseudo-labels, no high-frequency
// view and no cross-stream term: each stream contrasts its own two views,
// NT-Xent being SupCon's two-view case with base temperature = temperature.
//
// BN statistics: the authors forward both views of a stream as ONE batch, so
// each stream is one BN view of 2B images here (the two views share their
// statistics), not two views of B as in AdvCL and SimCLR. The projection
// head has one BN set in our model (two in the authors'): both streams train
// its weights and update its running statistics, adversarial stream first,
// as the authors' forward order would.
#pragma once
#include <string>
#include <vector>

#include "advcl/attacks/pgd.h"
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/pretrain/method.h"
#include "advcl/step/step_context.h"
#include "advcl/step/step_values.h"
#include "engine/tensor.h"
#include "nn/sgd.h"

namespace advcl::method {

// ACL's batch-norm statistic sets, in checkpoint order (bn_list.0, .1): the
// clean stream and the adversarial stream (finetuning takes set 1 by
// default, as the authors finetune from their `pgd` set).
enum AclBnSet : int { kAclNormal = 0, kAclPgd = 1 };
inline const std::vector<std::string> kAclBnSetNames{"normal", "pgd"};

struct AclStepOptions {
  double epsilon = 8.0 / 255;
  double step_size = 2.0 / 255;
  int iterations = 5;
  double temperature = 0.5;
  // The adversarial stream's weight w in ((2 - w) * clean + w * adversarial) / 2:
  // 1 in ACL (the streams weigh the same); DynACL ramps it towards 2.
  double adv_weight = 1;
  // The BN set the attack's forward uses: `pgd` in ACL-DS; the authors' code
  // offers `normal` instead (its `sameBN` switch).
  int attack_bn_set = kAclPgd;
  // ACL attacks the model in eval mode (running statistics); AdvCL attacks in
  // training mode (batch statistics). Kept as a switch to show the difference.
  bool attack_in_eval_mode = true;
};

struct AclBatch {
  Tensor x1, x2;  // the two SimCLR views, float [B, C, H, W] in [0, 1]
};

struct AclStepResult {
  // 0-D tensors on the model's device (read by the caller when it logs),
  // over the global batch under data parallelism.
  Tensor loss, clean, adv;  // the loss, and the NT-Xent of each stream
  Tensor x1_adv, x2_adv;    // the adversarial views the step trained on
};

// {"loss", "clean", "adv"} for the training loop's log.
StepValues acl_step_values(const AclStepResult& r);

// Random starts of the attack: x + U(-eps, eps) for each view, from two
// independent streams; `key.sample` is the epoch position of the batch's
// first image (as advcl_attack_starts).
std::vector<Tensor> acl_attack_starts(const AclBatch& batch, const AclStepOptions& opt, RngKey key);

// The whole step from given attack starts {x1 start, x2 start}; the model is
// in training mode afterwards. Data parallel through `ctx`
// (advcl/step/step_context.h): NT-Xent over the gathered global batch in the
// attack and in training, gradients averaged before the SGD step.
AclStepResult acl_step(ContrastiveModel& model, nn::Sgd& sgd, const AclBatch& batch, const std::vector<Tensor>& starts,
                       const AclStepOptions& opt, StepContext& ctx = StepContext::one_process());

// `advcl pretrain --method acl`: the views (two SimCLR draws with the
// authors' crop scale (0.1, 1)), the two BN sets and the step above.
PretrainMethod acl_method();

}  // namespace advcl::method
