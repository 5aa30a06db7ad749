#include "advcl/finetune/finetune.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "engine/ops.h"

namespace advcl::method {

FinetuneMode parse_finetune_mode(const std::string& s) {
  std::string m = s;
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (m == "slf") return FinetuneMode::Slf;
  if (m == "alf") return FinetuneMode::Alf;
  if (m == "aff") return FinetuneMode::Aff;
  fail("--mode: '", s, "' is not a finetuning mode; use slf, alf or aff");
}

const char* finetune_mode_name(FinetuneMode m) {
  switch (m) {
    case FinetuneMode::Slf:
      return "slf";
    case FinetuneMode::Alf:
      return "alf";
    case FinetuneMode::Aff:
      return "aff";
  }
  return "?";
}

TradesLoss trades_loss(const Tensor& logits_clean, const Tensor& logits_adv, const Tensor& labels, double beta) {
  check_same_shape("trades_loss", logits_clean, logits_adv);
  double batch = static_cast<double>(logits_clean.size(0));
  TradesLoss r;
  r.natural = ops::cross_entropy(logits_clean, labels, ops::Reduction::Mean);
  // kl_div(log p_adv, p_clean) = sum p_clean (log p_clean - log p_adv), with
  // gradients to both arguments.
  r.robust = ops::div(ops::kl_div(ops::log_softmax(logits_adv), ops::softmax(logits_clean), ops::KLReduction::Sum),
                      batch);
  r.total = ops::add(r.natural, ops::mul(r.robust, beta));
  return r;
}

Tensor trades_attack(const LogitsFn& logits, const Tensor& images, const FinetuneStepOptions& opt, RngKey start) {
  Tensor p_clean;
  {
    // The clean distribution is a constant of the attack (no gradient to it).
    NoGradGuard no_grad;
    p_clean = ops::softmax(logits(images));
  }
  PgdOptions p;
  p.epsilon = opt.epsilon;
  p.step = opt.step;
  p.iterations = opt.attack_steps;
  p.start = PgdOptions::Start::Normal;
  p.normal_std = 0.001;
  auto loss = [&](const std::vector<Tensor>& adv) {
    return ops::kl_div(ops::log_softmax(logits(adv[0])), p_clean, ops::KLReduction::Sum);
  };
  return pgd_linf({images}, loss, p, {start})[0];
}

namespace {

// The backward pass of a mean over this rank's `n` images, times the rank's
// share of the global batch (no extra op for one process, so one process
// computes exactly what it always did).
void scaled_backward(const Tensor& loss, int64_t n, StepContext& ctx) {
  const double scale = ctx.local_scale(n);
  ctx.backward(scale == 1 ? loss : ops::mul(loss, scale));
}

// The batch accuracy, on the device.
Tensor accuracy(const Tensor& logits, const Tensor& labels) {
  NoGradGuard no_grad;
  return ops::div(correct_count(logits, labels), static_cast<double>(labels.numel()));
}

// SLF and ALF: features of the (clean or adversarial) images from the frozen
// encoder, then one classifier step on the mean cross-entropy.
StepValues linear_step(FinetuneModel& model, nn::Sgd& sgd, const Tensor& images, const Tensor& labels,
                       StepContext& ctx) {
  Tensor feats;
  {
    NoGradGuard no_grad;  // the encoder is frozen: no graph through it
    feats = model.features(images);
  }
  sgd.zero_grad();
  Tensor logits = model.classifier.forward(feats);
  Tensor loss = ops::cross_entropy(logits, labels, ops::Reduction::Mean);
  scaled_backward(loss, labels.numel(), ctx);
  sgd.step();
  return {{"loss", loss.detach()}, {"acc", accuracy(logits, labels)}};
}

// finetune_step on this rank's images: values are means over them.
StepValues local_step(FinetuneModel& model, nn::Sgd& sgd, const Tensor& images, const Tensor& labels,
                      const FinetuneStepOptions& opt, RngKey start, StepContext& ctx) {
  LogitsFn eval_logits = [&](const Tensor& x) { return model.logits(x); };
  // Every attack runs against the model in eval mode (BN running statistics).
  model.eval();
  switch (opt.mode) {
    case FinetuneMode::Slf:
      return linear_step(model, sgd, images, labels, ctx);
    case FinetuneMode::Alf: {
      PgdOptions p;
      p.epsilon = opt.epsilon;
      p.step = opt.step;
      p.iterations = opt.attack_steps;
      p.start = PgdOptions::Start::Uniform;
      Tensor adv = pgd_ce_attack(eval_logits, images, labels, p, start);
      return linear_step(model, sgd, adv, labels, ctx);
    }
    case FinetuneMode::Aff: {
      Tensor adv = trades_attack(eval_logits, images, opt, start);
      model.train();
      sgd.zero_grad();
      Tensor lc = model.logits(images);
      Tensor la = model.logits(adv);
      {
        // TRADES forwards the clean batch a second time (for p_clean) after
        // the adversarial one. In train mode that forward gives the same
        // logits, so the gradient is unchanged by reusing `lc`; only the BN
        // running statistics see a third update, which this reproduces
        // without building a second graph.
        NoGradGuard no_grad;
        model.logits(images);
      }
      TradesLoss l = trades_loss(lc, la, labels, opt.beta);
      scaled_backward(l.total, labels.numel(), ctx);
      sgd.step();
      model.eval();
      return {{"loss", l.total.detach()},
              {"natural", l.natural.detach()},
              {"robust", l.robust.detach()},
              {"acc", accuracy(lc, labels)}};
    }
  }
  fail("finetune_step: unknown mode");
}

}  // namespace

StepValues finetune_step(FinetuneModel& model, nn::Sgd& sgd, const Tensor& images, const Tensor& labels,
                         const FinetuneStepOptions& opt, RngKey start, StepContext& ctx) {
  return ctx.global_means(local_step(model, sgd, images, labels, opt, start, ctx), labels.numel());
}

}  // namespace advcl::method
