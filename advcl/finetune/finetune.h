// The three finetuning protocols (docs/method.md section 12), one training
// step each:
//   SLF  standard linear finetuning: frozen encoder (eval mode), the linear
//        classifier trained on clean features;
//   ALF  adversarial linear finetuning: the classifier trained on PGD-10
//        examples made against encoder + classifier in eval mode;
//   AFF  adversarial full finetuning with TRADES (beta 6): every parameter trains.
// The losses and attacks are separate functions so that tests can check them
// against their definitions.
#pragma once
#include <functional>
#include <map>
#include <string>

#include "advcl/attacks/evaluate.h"
#include "advcl/finetune/finetune_model.h"
#include "advcl/step/step_context.h"
#include "advcl/step/step_values.h"
#include "engine/rng.h"
#include "nn/sgd.h"

namespace advcl::method {

enum class FinetuneMode { Slf, Alf, Aff };
// "slf", "alf", "aff" (case-insensitive); the error names --mode.
FinetuneMode parse_finetune_mode(const std::string& s);
const char* finetune_mode_name(FinetuneMode m);

struct FinetuneStepOptions {
  FinetuneMode mode = FinetuneMode::Slf;
  double epsilon = 8.0 / 255;
  double step = 2.0 / 255;
  int attack_steps = 10;  // ALF's PGD and AFF's TRADES attack
  double beta = 6.0;      // TRADES
};

// The parts of the TRADES objective for one batch of B points:
//   natural = CE_mean(logits_clean, labels)
//   robust  = KL(p_clean || p_adv) / B = sum_i sum_c p_clean (log p_clean - log p_adv) / B
//   total   = natural + beta * robust
// The gradient flows through both logits, p_clean included (as TRADES).
struct TradesLoss {
  Tensor total, natural, robust;
};
TradesLoss trades_loss(const Tensor& logits_clean, const Tensor& logits_adv, const Tensor& labels, double beta);

// TRADES' inner maximisation: `attack_steps` L-inf steps maximising
// sum over the batch of KL(p_clean || p_adv), from x + 0.001 * N(0, 1)
// (pgd.h's Normal start); p_clean is fixed during the attack. The caller
// puts the model in eval mode.
Tensor trades_attack(const LogitsFn& logits, const Tensor& images, const FinetuneStepOptions& opt, RngKey start);

// One optimiser step of the mode's protocol on (images, labels), both on the
// model's device; `sgd` holds the parameters that train (the classifier's for
// SLF and ALF, all for AFF). `start` keys the attack's random start. Leaves
// the model in eval mode. Returns the values to log, as 0-D tensors on the
// model's device (no host round trip): loss (and for AFF its parts natural,
// robust) and the training batch accuracy.
//
// Data parallel through `ctx` (advcl/step/step_context.h): on this rank's
// share of a global batch, the ranks together take the step one process takes
// on the whole batch: the loss scaled by the rank's share (unequal shards),
// the gradients of sgd's parameters averaged over the ranks before the step,
// and the logged values averaged over the global batch, identical on every
// rank. `start.sample` must then be the position of this rank's first image in
// the global batch (global_batch_offset), so each image's attack start is the
// one-process start; for AFF the model's batch norms must be synchronised
// (dist::make_batch_norm_sync).
StepValues finetune_step(FinetuneModel& model, nn::Sgd& sgd, const Tensor& images, const Tensor& labels,
                         const FinetuneStepOptions& opt, RngKey start, StepContext& ctx = StepContext::one_process());

}  // namespace advcl::method
