#include "advcl/finetune.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "dist/gradient_reducer.h"
#include "dist/gradient_sync.h"
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

// The loss to differentiate: `loss` times the data-parallel scale (no extra
// op for one process, so one process computes exactly what it always did).
Tensor scaled(const Tensor& loss, const FinetuneStepOptions& opt) {
  return opt.loss_scale == 1 ? loss : ops::mul(loss, opt.loss_scale);
}

void run_backward(const Tensor& loss, const FinetuneStepOptions& opt) {
  if (opt.backward)
    opt.backward(loss);
  else
    backward(loss);
}

// The batch accuracy, on the device.
Tensor accuracy(const Tensor& logits, const Tensor& labels) {
  NoGradGuard no_grad;
  return ops::div(correct_count(logits, labels), static_cast<double>(labels.numel()));
}

// SLF and ALF: features of the (clean or adversarial) images from the frozen
// encoder, then one classifier step on the mean cross-entropy.
StepValues linear_step(FinetuneModel& model, nn::Sgd& sgd, const Tensor& images,
                                          const Tensor& labels, const FinetuneStepOptions& opt) {
  Tensor feats;
  {
    NoGradGuard no_grad;  // the encoder is frozen: no graph through it
    feats = model.features(images);
  }
  sgd.zero_grad();
  Tensor logits = model.classifier.forward(feats);
  Tensor loss = ops::cross_entropy(logits, labels, ops::Reduction::Mean);
  run_backward(scaled(loss, opt), opt);
  sgd.step();
  return {{"loss", loss.detach()}, {"acc", accuracy(logits, labels)}};
}

}  // namespace

StepValues finetune_step(FinetuneModel& model, nn::Sgd& sgd, const Tensor& images,
                                            const Tensor& labels, const FinetuneStepOptions& opt, RngKey start) {
  LogitsFn eval_logits = [&](const Tensor& x) { return model.logits(x); };
  // Every attack runs against the model in eval mode (BN running statistics).
  model.eval();
  switch (opt.mode) {
    case FinetuneMode::Slf:
      return linear_step(model, sgd, images, labels, opt);
    case FinetuneMode::Alf: {
      PgdOptions p;
      p.epsilon = opt.epsilon;
      p.step = opt.step;
      p.iterations = opt.attack_steps;
      p.start = PgdOptions::Start::Uniform;
      Tensor adv = pgd_ce_attack(eval_logits, images, labels, p, start);
      return linear_step(model, sgd, adv, labels, opt);
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
      run_backward(scaled(l.total, opt), opt);
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

StepValues finetune_step_parallel(FinetuneModel& model, nn::Sgd& sgd, const Tensor& images, const Tensor& labels,
                                  FinetuneStepOptions opt, RngKey start, dist::Communicator& comm) {
  if (!comm.distributed()) return finetune_step(model, sgd, images, labels, opt, start);
  const int64_t n = labels.numel();
  // Every logged value is a mean over this rank's images: the loss (CE and
  // TRADES' KL / B are per-image means) and the accuracy. The scale makes
  // the averaged gradients the whole batch's (dist/gradient_sync.h).
  opt.loss_scale = dist::local_loss_scale(n, comm);
  dist::GradientReducer reducer(sgd.params(), comm);
  opt.backward = [&reducer](const Tensor& loss) { reducer.backward(loss); };
  StepValues values = finetune_step(model, sgd, images, labels, opt, start);
  // Global means: sum over ranks of value * count, over the global count,
  // in one float64 tensor. std::map iterates in key order, the same on every rank.
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (auto& [k, v] : values) parts.push_back(ops::mul(v.to(DType::Float64).view({1}), static_cast<double>(n)));
  parts.push_back(Tensor::full({1}, static_cast<double>(n), DType::Float64, images.device()));
  Tensor sums = ops::cat(parts);
  comm.all_reduce(sums, dist::ReduceOp::Sum, "finetune step values");
  Tensor count = ops::slice(sums, static_cast<int64_t>(values.size()), static_cast<int64_t>(values.size()) + 1);
  int64_t i = 0;
  for (auto& [k, v] : values) {
    v = ops::div(ops::slice(sums, i, i + 1), count).view({});
    ++i;
  }
  return values;
}

}  // namespace advcl::method
