#include "advcl/attacks/autoattack.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "advcl/attacks/apgd.h"
#include "advcl/attacks/fab.h"
#include "advcl/attacks/square.h"
#include "engine/ops.h"

namespace advcl::autoattack {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * v);
  return buf;
}

// One stage on a batch: the attack's candidates for rows ids of x.
Tensor run_stage(const std::string& name, const LogitsFn& model, const Tensor& xb, const std::vector<int64_t>& yb,
                 const std::vector<int64_t>& ids, const AutoAttackOptions& opt) {
  if (name == "apgd-ce" || name == "apgd-t") {
    ApgdOptions o;
    o.epsilon = opt.epsilon;
    o.iterations = opt.apgd_iterations;
    o.seed = opt.seed;
    o.target_classes = opt.target_classes;
    if (name == "apgd-ce") {
      o.restarts = opt.apgd_ce_restarts;
      return apgd_ce(model, xb, yb, ids, o);
    }
    o.restarts = 1;
    return apgd_targeted(model, xb, yb, ids, o);
  }
  if (name == "fab-t") {
    FabOptions o;
    o.epsilon = opt.epsilon;
    o.iterations = opt.fab_iterations;
    o.target_classes = opt.target_classes;
    return fab_targeted(model, xb, yb, o);
  }
  if (name == "square") {
    SquareOptions o;
    o.epsilon = opt.epsilon;
    o.queries = opt.square_queries;
    o.p_init = opt.square_p_init;
    o.seed = opt.seed;
    return square_linf(model, xb, yb, ids, o);
  }
  fail("run_autoattack: unknown attack '", name, "' (use apgd-ce, apgd-t, fab-t, square)");
}

// The labels on the host, once x, y and the options are checked.
std::vector<int64_t> checked_labels(const Tensor& x, const Tensor& y, const AutoAttackOptions& opt) {
  if (x.dim() != 4) fail("run_autoattack: x must be images [N, C, H, W], got ", shape_str(x.shape()));
  const int64_t N = x.size(0);
  std::vector<int64_t> labels = host_labels("run_autoattack", y, N);
  if (opt.batch_size < 1) fail("run_autoattack: batch size must be >= 1, got ", opt.batch_size);
  if (!(opt.epsilon >= 0)) fail("run_autoattack: epsilon must be >= 0, got ", opt.epsilon);
  if (opt.first_index < 0 || opt.first_index + N > (int64_t{1} << 32))
    fail("run_autoattack: first_index ", opt.first_index, " + ", N, " points does not fit the 32-bit RNG sample index");
  for (const std::string& a : opt.attacks)
    if (a != "apgd-ce" && a != "apgd-t" && a != "fab-t" && a != "square")
      fail("run_autoattack: unknown attack '", a, "' (use apgd-ce, apgd-t, fab-t, square)");
  return labels;
}

// The fraction of flags set (0 for none).
double fraction_set(const std::vector<uint8_t>& flags) {
  int64_t n = 0;
  for (uint8_t f : flags) n += f;
  return flags.empty() ? 0.0 : static_cast<double>(n) / static_cast<double>(flags.size());
}

// Per point: whether the model classifies the clean image correctly.
std::vector<uint8_t> correct_on_clean(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& labels,
                                      int64_t batch_size) {
  const int64_t N = x.size(0);
  std::vector<uint8_t> correct(static_cast<size_t>(N), 0);
  for (int64_t s = 0; s < N; s += batch_size) {
    int64_t e = std::min(N, s + batch_size);
    NoGradGuard no_grad;
    HostLogits h = host_logits(model(x.narrow0(s, e - s)));
    for (int64_t r = s; r < e; ++r)
      correct[static_cast<size_t>(r)] = h.pred[static_cast<size_t>(r - s)] == labels[static_cast<size_t>(r)];
  }
  return correct;
}

// Every attack projects; a point outside the ball or the box is a bug, not a success.
void check_examples(const std::string& name, const Tensor& xb, const Tensor& adv, double epsilon) {
  check_same_shape("run_autoattack", xb, adv);
  std::vector<double> dist = linf_distance(adv, xb);
  double lo, hi;
  {
    NoGradGuard no_grad;
    std::vector<double> mins = to_host(ops::min(ops::flatten(adv), 1)), maxs = to_host(ops::max(ops::flatten(adv), 1));
    lo = *std::min_element(mins.begin(), mins.end());
    hi = *std::max_element(maxs.begin(), maxs.end());
  }
  const double tol = 1e-6;
  double worst = *std::max_element(dist.begin(), dist.end());
  if (worst > epsilon + tol || lo < -tol || hi > 1 + tol)
    fail("run_autoattack: ", name, " returned a point outside the eps-ball or [0, 1] (distance ", worst, ", range [", lo,
         ", ", hi, "])");
}

// The examples that broke points, gathered once at the end: x_adv row i is
// row map[i] of [x; pieces...], so a stage keeps only the rows it broke.
class BrokenExamples {
 public:
  explicit BrokenExamples(const Tensor& x) : pieces_{x}, rows_(x.size(0)), map_(static_cast<size_t>(x.size(0))) {
    for (int64_t i = 0; i < rows_; ++i) map_[static_cast<size_t>(i)] = i;
  }
  // Rows `broken` of adv broke points ids[broken[k]].
  void add(const Tensor& adv, const std::vector<int64_t>& broken, const std::vector<int64_t>& ids) {
    if (broken.empty()) return;
    for (size_t k = 0; k < broken.size(); ++k)
      map_[static_cast<size_t>(ids[static_cast<size_t>(broken[k])])] = rows_ + static_cast<int64_t>(k);
    pieces_.push_back(take_rows(adv, broken));
    rows_ += static_cast<int64_t>(broken.size());
  }
  Tensor x_adv(const Tensor& x) const {
    NoGradGuard no_grad;
    return pieces_.size() == 1 ? x.detach() : ops::index_select(ops::cat(pieces_), index_tensor(map_, x)).detach();
  }

 private:
  std::vector<Tensor> pieces_;
  int64_t rows_;
  std::vector<int64_t> map_;
};

// One batch of a stage: the attack on points `ids`, its examples checked; the
// points they break lose their robust flag and keep their example. Returns
// how many broke.
int64_t attack_batch(const std::string& name, const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& labels,
                     const std::vector<int64_t>& ids, const AutoAttackOptions& opt, std::vector<uint8_t>& robust,
                     BrokenExamples& examples) {
  std::vector<int64_t> yb, sample_ids;
  for (int64_t i : ids) {
    yb.push_back(labels[static_cast<size_t>(i)]);
    sample_ids.push_back(opt.first_index + i);
  }
  Tensor xb = take_rows(x, ids);
  Tensor adv = run_stage(name, model, xb, yb, sample_ids, opt).detach();
  check_examples(name, xb, adv, opt.epsilon);
  HostLogits h;
  {
    NoGradGuard no_grad;
    h = host_logits(model(adv));
  }
  std::vector<int64_t> broken;
  for (size_t j = 0; j < ids.size(); ++j)
    if (h.pred[j] != yb[j]) {
      broken.push_back(static_cast<int64_t>(j));
      robust[static_cast<size_t>(ids[j])] = 0;
    }
  examples.add(adv, broken, ids);
  return static_cast<int64_t>(broken.size());
}

// One stage over the points still robust, in batches of opt.batch_size.
AutoAttackStage attack_robust_points(const std::string& name, const LogitsFn& model, const Tensor& x,
                                     const std::vector<int64_t>& labels, const AutoAttackOptions& opt,
                                     std::vector<uint8_t>& robust, BrokenExamples& examples,
                                     const ProgressFn& say) {
  const auto ts = Clock::now();
  AutoAttackStage stage;
  stage.name = name;
  std::vector<int64_t> todo = where(robust);
  stage.attacked = static_cast<int64_t>(todo.size());
  const int64_t batches = (stage.attacked + opt.batch_size - 1) / opt.batch_size;
  for (int64_t b = 0; b < batches; ++b) {
    std::vector<int64_t> ids(todo.begin() + b * opt.batch_size,
                             todo.begin() + std::min(stage.attacked, (b + 1) * opt.batch_size));
    const int64_t broke = attack_batch(name, model, x, labels, ids, opt, robust, examples);
    stage.broken += broke;
    say(name + " - " + std::to_string(b + 1) + "/" + std::to_string(batches) + " - " + std::to_string(broke) +
        " out of " + std::to_string(ids.size()) + " successfully perturbed");
  }
  stage.robust_accuracy = fraction_set(robust);
  stage.seconds = seconds_since(ts);
  return stage;
}

}  // namespace

AutoAttackResult run_autoattack(const LogitsFn& model, const Tensor& x, const Tensor& y,
                                const AutoAttackOptions& opt) {
  const std::vector<int64_t> labels = checked_labels(x, y, opt);
  const int64_t N = x.size(0);
  const ProgressFn say = [&](const std::string& line) {
    if (opt.progress) opt.progress(line);
  };
  const auto t0 = Clock::now();
  AutoAttackResult res;
  res.robust = correct_on_clean(model, x, labels, opt.batch_size);
  res.clean_accuracy = fraction_set(res.robust);
  say("autoattack: clean accuracy " + percent(res.clean_accuracy) + " (" + std::to_string(N) + " points, eps " +
      std::to_string(opt.epsilon) + ")");

  BrokenExamples examples(x);
  for (const std::string& name : opt.attacks) {
    res.stages.push_back(attack_robust_points(name, model, x, labels, opt, res.robust, examples, say));
    char buf[64];
    std::snprintf(buf, sizeof buf, " (total time %.1f s)", seconds_since(t0));
    say("robust accuracy after " + name + ": " + percent(res.stages.back().robust_accuracy) + buf);
  }

  res.x_adv = examples.x_adv(x);
  res.robust_accuracy = fraction_set(res.robust);
  std::vector<double> dist = linf_distance(res.x_adv, x);
  for (double d : dist) res.max_perturbation = std::max(res.max_perturbation, d);
  say("autoattack: robust accuracy " + percent(res.robust_accuracy) + ", max L-inf perturbation " +
      std::to_string(res.max_perturbation));
  return res;
}

}  // namespace advcl::autoattack
