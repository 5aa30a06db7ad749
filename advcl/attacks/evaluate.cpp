#include "advcl/attacks/evaluate.h"

#include <cmath>

#include "advcl/attacks/autoattack.h"
#include "engine/ops.h"

namespace advcl::method {

namespace {
// The step of the RngKey of evaluation starts: far from the training steps
// (which key training attacks by global step), so the two never share noise.
constexpr uint32_t kEvalStartStream = 0xE7A10000u;
}  // namespace

Tensor correct_count(const Tensor& logits, const Tensor& labels) {
  if (logits.dim() != 2 || labels.dim() != 1 || logits.size(0) != labels.size(0))
    fail("count_correct: logits ", shape_str(logits.shape()), " and labels ", shape_str(labels.shape()),
         " do not match");
  check_same_device("count_correct", labels, logits, "labels");
  NoGradGuard no_grad;
  Tensor pred = ops::argmax(logits.detach(), 1).to(DType::Float64);
  // Both are class indices (exact in float64): a row is right where
  // |pred - label| is 0, so 1 - min(|pred - label|, 1) counts it.
  Tensor wrong = ops::clamp(ops::abs(ops::sub(pred, labels.to(DType::Float64))), 0.0, 1.0);
  return ops::sum(ops::rsub(wrong, 1.0));
}

int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  return std::llround(correct_count(logits, labels).item());
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

DeviceCounts count_batch(const LogitsFn& logits, const Tensor& images, const Tensor& labels, const EvalOptions& opt,
                         int64_t first_index) {
  DeviceCounts c;
  {
    NoGradGuard no_grad;
    c.clean = correct_count(logits(images), labels);
  }
  if (opt.steps == 0) {
    c.robust = c.clean;
    return c;
  }
  Tensor adv = pgd_ce_attack(logits, images, labels, eval_attack_options(opt), eval_start_key(opt, first_index));
  NoGradGuard no_grad;
  c.robust = correct_count(logits(adv), labels);
  return c;
}

namespace {

// Clean and robust counts on the host, in one read.
void read_counts(const DeviceCounts& d, EvalCounts& c) {
  NoGradGuard no_grad;
  std::vector<double> v = ops::cat({d.clean.view({1}), d.robust.view({1})}).to_vector<double>();
  c.clean = std::llround(v[0]);
  c.robust = std::llround(v[1]);
}

}  // namespace

EvalCounts evaluate_batch(const LogitsFn& logits, const Tensor& images, const Tensor& labels, const EvalOptions& opt,
                          int64_t first_index) {
  EvalCounts c;
  c.n = labels.numel();
  read_counts(count_batch(logits, images, labels, opt, first_index), c);
  return c;
}

EvalCounts evaluate_pgd(const LogitsFn& logits, data::BatchLoader& loader, const EvalOptions& opt, int64_t limit) {
  if (opt.steps < 0) fail("evaluate: attack steps must be >= 0, got ", opt.steps);
  EvalCounts total;
  DeviceCounts sums;  // added up on the device, read once at the end
  data::Batch b;
  while ((limit <= 0 || total.n < limit) && loader.next(b)) {
    if (b.size() == 0) continue;
    Tensor x = b.images(), y = b.labels;
    if (limit > 0 && total.n + b.size() > limit) {
      int64_t keep = limit - total.n;
      x = ops::slice(x, 0, keep);
      y = ops::slice(y, 0, keep);
    }
    int64_t first = b.indices.data<int64_t>()[0];  // the loader's indices are on the host
    DeviceCounts c = count_batch(logits, data::upload(x, opt.device), data::upload(y, opt.device), opt, first);
    total.n += y.numel();
    NoGradGuard no_grad;
    sums.clean = sums.clean.defined() ? ops::add(sums.clean, c.clean) : c.clean;
    sums.robust = sums.robust.defined() ? ops::add(sums.robust, c.robust) : c.robust;
  }
  if (total.n > 0) read_counts(sums, total);
  // Leave the loader at the start of its next epoch, whatever `limit` cut.
  if (loader.state().batch != 0) loader.set_state({loader.state().epoch + 1, 0});
  return total;
}

EvalCounts sum_over_ranks(const EvalCounts& c, dist::Communicator& comm) {
  if (!comm.distributed()) return c;
  int64_t v[3] = {c.n, c.clean, c.robust};
  comm.all_reduce(v, 3, dist::ReduceOp::Sum, "evaluation counts");
  EvalCounts total;
  total.n = v[0];
  total.clean = v[1];
  total.robust = v[2];
  return total;
}

AutoAttackCounts evaluate_autoattack(const LogitsFn& logits, data::BatchLoader& loader,
                                     const autoattack::AutoAttackOptions& opt, Device device,
                                     const std::function<void(const EvalCounts&)>& progress,
                                     dist::Communicator& comm) {
  autoattack::AutoAttackOptions ao = opt;
  // Stage i of every batch's result is opt.attacks[i]; one count per stage,
  // so that a rank without a single point still adds a row of zeros.
  std::vector<int64_t> sums(opt.attacks.size() + 3, 0);  // n, clean, robust, then per stage
  data::Batch b;
  while (loader.next(b)) {
    if (b.size() == 0) continue;
    ao.first_index = b.indices.to_vector<int64_t>().at(0);
    autoattack::AutoAttackResult r = autoattack::run_autoattack(logits, b.images().to(device), b.labels, ao);
    if (r.stages.size() != opt.attacks.size())
      fail("evaluate_autoattack: ", r.stages.size(), " stages reported for ", opt.attacks.size(), " attacks");
    const int64_t n = b.size();
    sums[0] += n;
    sums[1] += std::llround(r.clean_accuracy * static_cast<double>(n));
    for (uint8_t robust : r.robust) sums[2] += robust;
    for (size_t i = 0; i < r.stages.size(); ++i) sums[3 + i] += r.stages[i].broken;
    if (progress) progress(EvalCounts{sums[0], sums[1], sums[2]});
  }
  if (comm.distributed())
    comm.all_reduce(sums.data(), static_cast<int64_t>(sums.size()), dist::ReduceOp::Sum, "AutoAttack counts");
  AutoAttackCounts out;
  out.counts = EvalCounts{sums[0], sums[1], sums[2]};
  for (size_t i = 0; i < opt.attacks.size(); ++i) out.broken.emplace_back(opt.attacks[i], sums[3 + i]);
  return out;
}

}  // namespace advcl::method
