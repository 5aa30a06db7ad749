#include "advcl/evaluate.h"

#include "engine/ops.h"

namespace advcl::method {

namespace {
// The step of the RngKey of evaluation starts: far from the training steps
// (which key training attacks by global step), so the two never share noise.
constexpr uint32_t kEvalStartStream = 0xE7A10000u;
}  // namespace

int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  if (logits.dim() != 2 || labels.dim() != 1 || logits.size(0) != labels.size(0))
    fail("count_correct: logits ", shape_str(logits.shape()), " and labels ", shape_str(labels.shape()),
         " do not match");
  NoGradGuard no_grad;
  std::vector<int64_t> pred = ops::argmax(logits.detach(), 1).to(Device::cpu()).to_vector<int64_t>();
  std::vector<int64_t> want = labels.to(Device::cpu()).to_vector<int64_t>();
  int64_t c = 0;
  for (size_t i = 0; i < pred.size(); ++i) c += pred[i] == want[i];
  return c;
}

PgdOptions eval_attack_options(const EvalOptions& opt) {
  PgdOptions p;
  p.epsilon = opt.epsilon;
  p.step = opt.step;
  p.iterations = opt.steps;
  p.start = opt.random_start ? PgdOptions::Start::Uniform : PgdOptions::Start::Clean;
  return p;
}

Tensor pgd_ce_attack(const LogitsFn& logits, const Tensor& images, const Tensor& labels, const PgdOptions& opt,
                     RngKey start) {
  auto loss = [&](const std::vector<Tensor>& adv) {
    return ops::cross_entropy(logits(adv[0]), labels, ops::Reduction::Sum);
  };
  return pgd_linf({images}, loss, opt, {start})[0];
}

RngKey eval_start_key(const EvalOptions& opt, int64_t first_index) {
  return RngKey{opt.seed, static_cast<uint32_t>(RngPurpose::AttackStart), kEvalStartStream,
                static_cast<uint32_t>(first_index)};
}

EvalCounts evaluate_batch(const LogitsFn& logits, const Tensor& images, const Tensor& labels, const EvalOptions& opt,
                          int64_t first_index) {
  EvalCounts c;
  c.n = labels.numel();
  {
    NoGradGuard no_grad;
    c.clean = count_correct(logits(images), labels);
  }
  if (opt.steps == 0) {
    c.robust = c.clean;
    return c;
  }
  Tensor adv = pgd_ce_attack(logits, images, labels, eval_attack_options(opt), eval_start_key(opt, first_index));
  NoGradGuard no_grad;
  c.robust = count_correct(logits(adv), labels);
  return c;
}

EvalCounts evaluate_pgd(const LogitsFn& logits, data::BatchLoader& loader, const EvalOptions& opt, int64_t limit) {
  if (opt.steps < 0) fail("evaluate: attack steps must be >= 0, got ", opt.steps);
  EvalCounts total;
  data::Batch b;
  while ((limit <= 0 || total.n < limit) && loader.next(b)) {
    Tensor x = b.images(), y = b.labels;
    if (limit > 0 && total.n + b.size() > limit) {
      int64_t keep = limit - total.n;
      x = ops::slice(x, 0, keep);
      y = ops::slice(y, 0, keep);
    }
    int64_t first = b.indices.to_vector<int64_t>().at(0);
    total += evaluate_batch(logits, x.to(opt.device), y.to(opt.device), opt, first);
  }
  // Leave the loader at the start of its next epoch, whatever `limit` cut.
  if (loader.state().batch != 0) loader.set_state({loader.state().epoch + 1, 0});
  return total;
}

}  // namespace advcl::method
