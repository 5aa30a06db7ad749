#include "advcl/attacks/apgd.h"

#include <algorithm>
#include <numeric>

#include "engine/ops.h"

namespace advcl::autoattack {

// --- losses -------------------------------------------------------------------

Tensor ce_loss(const Tensor& logits, const std::vector<int64_t>& y) {
  check_dim("ce_loss", logits, 2, "logits");
  Tensor oh = one_hot(y, logits.size(1), logits);
  return ops::neg(ops::sum(ops::mul(ops::log_softmax(logits), oh), 1));
}

Tensor dlr_loss(const Tensor& logits, const std::vector<int64_t>& y) {
  check_dim("dlr_loss", logits, 2, "logits");
  if (logits.size(1) < 3) fail("dlr_loss: needs at least 3 classes, got ", logits.size(1));
  ops::TopK top = ops::topk(logits, 3);
  // The largest logit other than y's: the 2nd when y is on top, else the 1st.
  std::vector<int64_t> first = top.indices.to_vector<int64_t>();
  std::vector<double> y_on_top(y.size());
  for (size_t r = 0; r < y.size(); ++r) y_on_top[r] = first[r * 3] == y[r] ? 1.0 : 0.0;
  Tensor m = from_host(y_on_top, {static_cast<int64_t>(y.size())}, logits);
  Tensor v1 = column(top.values, 0), v2 = column(top.values, 1), v3 = column(top.values, 2);
  Tensor other = ops::add(ops::mul(v1, ops::rsub(m, 1.0)), ops::mul(v2, m));
  Tensor zy = ops::sum(ops::mul(logits, one_hot(y, logits.size(1), logits)), 1);
  return ops::neg(ops::div(ops::sub(zy, other), ops::add(ops::sub(v1, v3), 1e-12)));
}

Tensor dlr_loss_targeted(const Tensor& logits, const std::vector<int64_t>& y, const std::vector<int64_t>& target) {
  check_dim("dlr_loss_targeted", logits, 2, "logits");
  if (logits.size(1) < 4) fail("dlr_loss_targeted: needs at least 4 classes, got ", logits.size(1));
  if (target.size() != y.size()) fail("dlr_loss_targeted: ", target.size(), " targets for ", y.size(), " labels");
  ops::TopK top = ops::topk(logits, 4);
  Tensor diff = one_hot(y, logits.size(1), logits) - one_hot(target, logits.size(1), logits);
  Tensor zy_minus_zt = ops::sum(ops::mul(logits, diff), 1);
  Tensor denom = column(top.values, 0) - 0.5 * (column(top.values, 2) + column(top.values, 3)) + 1e-12;
  return ops::neg(ops::div(zy_minus_zt, denom));
}

// --- schedule -------------------------------------------------------------------

std::vector<int> apgd_checkpoints(int iterations) {
  std::vector<int> out;
  int period = std::max(static_cast<int>(0.22 * iterations), 1);
  const int shrink = std::max(static_cast<int>(0.03 * iterations), 1);
  const int least = std::max(static_cast<int>(0.06 * iterations), 1);
  for (int at = period; at <= iterations; at += period) {
    out.push_back(at);
    period = std::max(period - shrink, least);
  }
  return out;
}

std::vector<int64_t> class_at_rank(const HostLogits& h, int rank) {
  if (rank < 1 || rank > h.classes) fail("class_at_rank: rank ", rank, " out of range for ", h.classes, " classes");
  std::vector<int64_t> out(static_cast<size_t>(h.rows));
  std::vector<int64_t> order(static_cast<size_t>(h.classes));
  for (int64_t r = 0; r < h.rows; ++r) {
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return h.at(r, a) > h.at(r, b); });
    out[static_cast<size_t>(r)] = order[static_cast<size_t>(rank - 1)];
  }
  return out;
}

// --- one run --------------------------------------------------------------------

namespace {

struct Eval {
  HostLogits logits;
  std::vector<double> loss;
  Tensor grad;
};

Eval evaluate(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y,
              const std::vector<int64_t>& target, ApgdLoss kind) {
  Tensor xg = x.detach().set_requires_grad(true);
  Tensor z = model(xg);
  Tensor l;
  switch (kind) {
    case ApgdLoss::CE: l = ce_loss(z, y); break;
    case ApgdLoss::DLR: l = dlr_loss(z, y); break;
    case ApgdLoss::DLRTargeted: l = dlr_loss_targeted(z, y, target); break;
  }
  Eval e;
  e.logits = host_logits(z);
  e.loss = to_host(l);
  e.grad = grad(ops::sum(l), {xg})[0];
  return e;
}

}  // namespace

Tensor apgd_start(const Tensor& x, const std::vector<int64_t>& ids, double eps, uint64_t seed, RngPurpose purpose,
                  uint32_t step) {
  NoGradGuard no_grad;
  Shape row = x.shape();
  row[0] = 1;
  std::vector<Tensor> rows;
  for (int64_t id : ids) {
    RngKey key{seed, static_cast<uint32_t>(purpose), step, static_cast<uint32_t>(id)};
    rows.push_back(ops::rand_uniform(row, key, -1.0, 1.0, x.dtype(), x.device()));
  }
  Tensor t = ops::cat(rows);
  Tensor scale = ops::max(ops::abs(ops::flatten(t)), 1, true);  // [B, 1]
  Shape bshape(static_cast<size_t>(x.dim()), 1);
  bshape[0] = x.size(0);
  t = ops::div(t, ops::add(ops::reshape(scale, bshape), 1e-12));
  return ops::clamp(ops::add(x, ops::mul(t, eps)), 0.0, 1.0);
}

ApgdRun apgd_run(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y,
                 const std::vector<int64_t>& target, ApgdLoss kind, const Tensor& start, const ApgdOptions& opt) {
  const int64_t B = x.size(0);
  const size_t nb = static_cast<size_t>(B);
  if (opt.iterations < 1) fail("apgd: iterations must be >= 1, got ", opt.iterations);
  const double eps = opt.epsilon;
  const LinfBox box(x, eps);
  Tensor x_adv = box.clip(start);
  Eval e = evaluate(model, x_adv, y, target, kind);

  ApgdRun out;
  out.x_best = x_adv;
  out.x_best_adv = x_adv;
  out.loss_best = e.loss;
  out.robust.assign(nb, 0);
  for (size_t r = 0; r < nb; ++r) out.robust[r] = e.logits.pred[r] == y[r];
  Tensor grad_now = e.grad, grad_best = e.grad;
  out.step.assign(nb, 2.0 * eps);  // initial step 2 eps

  // Schedule state: period length and counters as the reference code.
  std::vector<int> checks = apgd_checkpoints(opt.iterations);
  size_t next_check = 0;
  int last_check = 0;
  std::vector<std::vector<double>> loss_at(static_cast<size_t>(opt.iterations) + 1);  // loss_at[i]: after i steps
  loss_at[0] = e.loss;
  std::vector<double> loss_best_last_check = out.loss_best;
  std::vector<uint8_t> reduced_last_check(nb, 1);  // no "no improvement" halving at the first checkpoint

  Tensor x_prev = x_adv;
  for (int i = 0; i < opt.iterations; ++i) {
    {
      NoGradGuard no_grad;
      // Momentum: z = P(x + step * sign(g)); x' = P(x + a (z - x) + (1 - a)(x - x_prev)); no momentum on step 1.
      const double a = i > 0 ? 0.75 : 1.0;
      Tensor step = row_values(out.step, x_adv);
      Tensor z = box.clip(ops::add(x_adv, ops::mul(ops::sign(grad_now), step)));
      Tensor momentum = ops::sub(x_adv, x_prev);
      x_prev = x_adv;
      x_adv = box.clip(ops::add(ops::add(x_adv, ops::mul(ops::sub(z, x_adv), a)), ops::mul(momentum, 1.0 - a)));
    }
    e = evaluate(model, x_adv, y, target, kind);
    grad_now = e.grad;
    std::vector<uint8_t> wrong(nb), improved(nb);
    for (size_t r = 0; r < nb; ++r) {
      wrong[r] = e.logits.pred[r] != y[r];
      if (wrong[r]) out.robust[r] = 0;
      improved[r] = e.loss[r] > out.loss_best[r];
      if (improved[r]) out.loss_best[r] = e.loss[r];
    }
    out.x_best_adv = blend_rows(out.x_best_adv, x_adv, wrong);
    out.x_best = blend_rows(out.x_best, x_adv, improved);
    grad_best = blend_rows(grad_best, grad_now, improved);
    loss_at[static_cast<size_t>(i) + 1] = e.loss;

    if (next_check < checks.size() && i + 1 == checks[next_check]) {
      const int k = checks[next_check] - last_check;
      std::vector<uint8_t> halve(nb);
      for (size_t r = 0; r < nb; ++r) {
        // Steps since the last checkpoint that increased the loss. The
        // reference code compares with <= (not the paper's <).
        int increases = 0;
        for (int s = last_check; s < checks[next_check]; ++s)
          increases += loss_at[static_cast<size_t>(s) + 1][r] > loss_at[static_cast<size_t>(s)][r];
        bool oscillating = increases <= k * opt.rho;
        bool stalled = !reduced_last_check[r] && loss_best_last_check[r] >= out.loss_best[r];
        halve[r] = oscillating || stalled;
        reduced_last_check[r] = halve[r];
        if (halve[r]) out.step[r] /= 2.0;
      }
      loss_best_last_check = out.loss_best;
      // Restart the halved rows from their best point.
      x_adv = blend_rows(x_adv, out.x_best, halve);
      grad_now = blend_rows(grad_now, grad_best, halve);
      last_check = checks[next_check];
      ++next_check;
    }
  }
  return out;
}

// --- restarts and targets ---------------------------------------------------------

namespace {

void check_options(const char* op, const ApgdOptions& opt) {
  if (!(opt.epsilon >= 0)) fail(op, ": epsilon must be >= 0, got ", opt.epsilon);
  if (opt.iterations < 1 || opt.restarts < 0 || opt.target_classes < 0)
    fail(op, ": bad options (iterations ", opt.iterations, ", restarts ", opt.restarts, ", target classes ",
         opt.target_classes, ")");
}

// Runs `run_one(rows)` on the still-robust rows and folds in what it broke.
template <class RunOne>
void attack_robust_rows(std::vector<uint8_t>& robust, Tensor& adv, RunOne run_one) {
  std::vector<int64_t> rows = where(robust);
  if (rows.empty()) return;
  ApgdRun res = run_one(rows);
  std::vector<int64_t> broken_rows, broken_local;
  for (size_t j = 0; j < rows.size(); ++j)
    if (!res.robust[j]) {
      broken_rows.push_back(rows[j]);
      broken_local.push_back(static_cast<int64_t>(j));
      robust[static_cast<size_t>(rows[j])] = 0;
    }
  if (!broken_rows.empty()) adv = put_rows(adv, broken_rows, take_rows(res.x_best_adv, broken_local));
}

template <class T>
std::vector<T> pick(const std::vector<T>& v, const std::vector<int64_t>& rows) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (int64_t r : rows) out.push_back(v[static_cast<size_t>(r)]);
  return out;
}

std::vector<uint8_t> correct(const HostLogits& h, const std::vector<int64_t>& y) {
  std::vector<uint8_t> c(y.size());
  for (size_t r = 0; r < y.size(); ++r) c[r] = h.pred[r] == y[r];
  return c;
}

}  // namespace

Tensor apgd_ce(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y, const std::vector<int64_t>& ids,
               const ApgdOptions& opt) {
  check_batch("apgd_ce", x, y, ids);
  check_options("apgd_ce", opt);
  HostLogits clean;
  {
    NoGradGuard no_grad;
    clean = host_logits(model(x));
  }
  std::vector<uint8_t> robust = correct(clean, y);
  Tensor adv = x;
  for (int restart = 0; restart < opt.restarts; ++restart)
    attack_robust_rows(robust, adv, [&](const std::vector<int64_t>& rows) {
      Tensor xs = take_rows(x, rows);
      Tensor start = apgd_start(xs, pick(ids, rows), opt.epsilon, opt.seed, RngPurpose::ApgdCeStart,
                                static_cast<uint32_t>(restart));
      return apgd_run(model, xs, pick(y, rows), {}, ApgdLoss::CE, start, opt);
    });
  return adv;
}

Tensor apgd_targeted(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y,
                     const std::vector<int64_t>& ids, const ApgdOptions& opt) {
  check_batch("apgd_targeted", x, y, ids);
  check_options("apgd_targeted", opt);
  HostLogits clean;
  {
    NoGradGuard no_grad;
    clean = host_logits(model(x));
  }
  if (opt.target_classes + 1 > clean.classes)
    fail("apgd_targeted: ", opt.target_classes, " target classes need at least ", opt.target_classes + 1,
         " classes, the model has ", clean.classes);
  std::vector<uint8_t> robust = correct(clean, y);
  Tensor adv = x;
  for (int t = 0; t < opt.target_classes; ++t) {
    // Target: the class ranked t + 2 by the clean logits (rank 1 is y itself for a correct point).
    std::vector<int64_t> target = class_at_rank(clean, t + 2);
    for (int restart = 0; restart < opt.restarts; ++restart)
      attack_robust_rows(robust, adv, [&](const std::vector<int64_t>& rows) {
        Tensor xs = take_rows(x, rows);
        uint32_t step = static_cast<uint32_t>(t * opt.restarts + restart);
        Tensor start = apgd_start(xs, pick(ids, rows), opt.epsilon, opt.seed, RngPurpose::ApgdTStart, step);
        return apgd_run(model, xs, pick(y, rows), pick(target, rows), ApgdLoss::DLRTargeted, start, opt);
      });
  }
  return adv;
}

}  // namespace advcl::autoattack
