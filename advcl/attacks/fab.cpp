#include "advcl/attacks/fab.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "advcl/attacks/apgd.h"  // class_at_rank
#include "engine/ops.h"
#include "engine/parallel.h"

namespace advcl::autoattack {

double fab_project_linf(const double* t, const double* w, double b, int64_t D, double* d) {
  // Orient the problem so that w . t >= b and the step must lower w . x by
  // c = w . t - b >= 0. Moving coordinate i by up to delta in its useful
  // direction (against sign(w_i)) lowers w . x by |w_i| min(delta, p_i),
  // p_i the distance to the box edge that way. g(delta) = sum_i |w_i|
  // min(delta, p_i) is piecewise linear and nondecreasing: the smallest
  // delta with g(delta) = c is found by walking the sorted breakpoints p_i.
  double c = -b;
  for (int64_t i = 0; i < D; ++i) c += w[i] * t[i];
  const double side = c >= 0 ? 1.0 : -1.0;
  c *= side;
  // One buffer per thread, reused: FAB calls this twice per point per iteration.
  thread_local std::vector<std::pair<double, double>> breaks;  // (p_i, |w_i|)
  breaks.clear();
  breaks.reserve(static_cast<size_t>(D));
  double slope = 0;
  for (int64_t i = 0; i < D; ++i) {
    if (w[i] == 0) continue;
    bool up = side * w[i] < 0;  // raising x_i lowers side * (w . x)
    double p = std::max(up ? 1.0 - t[i] : t[i], 0.0);
    breaks.emplace_back(p, std::abs(w[i]));
    slope += std::abs(w[i]);
  }
  std::sort(breaks.begin(), breaks.end());
  double delta = INFINITY, reached = 0;  // reached: g at the previous breakpoint minus its linear part
  for (const auto& [p, aw] : breaks) {
    if (reached + slope * p >= c) {
      delta = std::max((c - reached) / slope, 0.0);
      break;
    }
    reached += aw * p;
    slope -= aw;
  }
  double norm = 0;
  for (int64_t i = 0; i < D; ++i) {
    if (w[i] == 0) {
      d[i] = 0;
      continue;
    }
    bool up = side * w[i] < 0;
    double p = std::max(up ? 1.0 - t[i] : t[i], 0.0);
    double m = std::min(delta, p);
    d[i] = up ? m : -m;
    norm = std::max(norm, m);
  }
  return norm;
}

void fab_project_linf_rows(int64_t n, int64_t D, const double* t, const double* w, const double* b, double* d,
                           double* norms) {
  // Rows are independent; threads only when the batch is sizeable (the sort
  // of a 1x32x32 row takes microseconds).
  parallel_for(n, [&](int64_t r) {
    const size_t o = static_cast<size_t>(r * D);
    norms[r] = fab_project_linf(t + o, w + o, b[r], D, d + o);
  }, std::max<int64_t>(1, (int64_t{1} << 17) / std::max<int64_t>(D, 1)));
}

namespace {

constexpr double kNotFound = 1e10;

struct FabRun {
  std::vector<double> adv;   // [n * D], the smallest adversarial example found (clean where none)
  std::vector<double> dist;  // its L-inf distance, kNotFound where none
};

FabRun fab_single_run(const LogitsFn& model, const Tensor& xs, const std::vector<int64_t>& y,
                      const std::vector<int64_t>& target, const FabOptions& opt) {
  const int64_t n = xs.size(0), D = xs.numel() / std::max<int64_t>(n, 1);
  const std::vector<double> x0 = to_host(xs);
  std::vector<double> x1 = x0;
  FabRun run{x0, std::vector<double>(static_cast<size_t>(n), kNotFound)};
  // Host buffers for the whole batch, made once: steps, their norms, hyperplane offsets.
  std::vector<double> d1(x0.size()), d2(x0.size()), a1(static_cast<size_t>(n)), a2(static_cast<size_t>(n)),
      offset(static_cast<size_t>(n));
  Tensor diff_onehot;  // one_hot(target) - one_hot(y), built on the first forward

  for (int it = 0; it < opt.iterations; ++it) {
    // Linearise f_t - f_y at x1: value df, gradient g.
    Tensor xg = from_host(x1, xs.shape(), xs).set_requires_grad(true);
    Tensor z = model(xg);
    if (!diff_onehot.defined()) diff_onehot = one_hot(target, z.size(1), z) - one_hot(y, z.size(1), z);
    Tensor f = ops::sum(ops::mul(z, diff_onehot), 1);
    Tensor g = grad(ops::sum(f), {xg})[0];
    const std::vector<double> df = to_host(f), gh = to_host(g);

    // The boundary {v : g . v = g . x1 - df} of the linearisation, per row;
    // x1 and the clean x0 projected onto it (within [0, 1]), all rows at once.
    for (int64_t r = 0; r < n; ++r) {
      const size_t o = static_cast<size_t>(r * D);
      double b = -df[static_cast<size_t>(r)];
      for (int64_t i = 0; i < D; ++i) b += gh[o + i] * x1[o + i];
      offset[static_cast<size_t>(r)] = b;
    }
    fab_project_linf_rows(n, D, x1.data(), gh.data(), offset.data(), d1.data(), a1.data());
    fab_project_linf_rows(n, D, x0.data(), gh.data(), offset.data(), d2.data(), a2.data());
    const bool round_to_float = xs.dtype() == DType::Float32;
    for (int64_t r = 0; r < n; ++r) {
      const size_t o = static_cast<size_t>(r * D);
      // Bias towards the clean point's projection, the more the farther x1 had to go.
      const double n1 = std::max(a1[static_cast<size_t>(r)], 1e-8), n2 = std::max(a2[static_cast<size_t>(r)], 1e-8);
      const double alpha = std::min(std::max(n1 / (n1 + n2), 0.0), opt.alpha_max);
      for (int64_t i = 0; i < D; ++i) {
        double v = (x1[o + i] + opt.eta * d1[o + i]) * (1 - alpha) + (x0[o + i] + opt.eta * d2[o + i]) * alpha;
        v = std::min(std::max(v, 0.0), 1.0);
        // The model sees x1 in the tensors' dtype: keep that rounding, so the
        // distances and the pull-back below use what was classified.
        x1[o + i] = round_to_float ? static_cast<double>(static_cast<float>(v)) : v;
      }
    }

    HostLogits h;
    {
      NoGradGuard no_grad;
      h = host_logits(model(from_host(x1, xs.shape(), xs)));
    }
    for (int64_t r = 0; r < n; ++r) {
      if (h.pred[static_cast<size_t>(r)] == y[static_cast<size_t>(r)]) continue;
      const size_t o = static_cast<size_t>(r * D);
      double dist = 0;
      for (int64_t i = 0; i < D; ++i) dist = std::max(dist, std::abs(x1[o + i] - x0[o + i]));
      if (dist < run.dist[static_cast<size_t>(r)]) {
        run.dist[static_cast<size_t>(r)] = dist;
        std::copy(x1.begin() + o, x1.begin() + o + D, run.adv.begin() + o);
      }
      // Step back towards the clean point to look for a smaller perturbation.
      for (int64_t i = 0; i < D; ++i) x1[o + i] = x0[o + i] + (x1[o + i] - x0[o + i]) * opt.beta;
    }
  }
  return run;
}

}  // namespace

Tensor fab_targeted(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y, const FabOptions& opt) {
  std::vector<int64_t> ids(y.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  check_batch("fab_targeted", x, y, ids);
  if (!(opt.epsilon >= 0) || opt.iterations < 1 || opt.target_classes < 0 || !(opt.alpha_max >= 0) ||
      !(opt.eta > 0) || !(opt.beta > 0 && opt.beta <= 1))
    fail("fab_targeted: bad options (epsilon ", opt.epsilon, ", iterations ", opt.iterations, ", target classes ",
         opt.target_classes, ", alpha_max ", opt.alpha_max, ", eta ", opt.eta, ", beta ", opt.beta, ")");
  HostLogits clean;
  {
    NoGradGuard no_grad;
    clean = host_logits(model(x));
  }
  if (opt.target_classes + 1 > clean.classes)
    fail("fab_targeted: ", opt.target_classes, " target classes need at least ", opt.target_classes + 1,
         " classes, the model has ", clean.classes);
  std::vector<uint8_t> robust(y.size());
  for (size_t r = 0; r < y.size(); ++r) robust[r] = clean.pred[r] == y[r];
  Tensor adv = x;
  for (int t = 0; t < opt.target_classes; ++t) {
    std::vector<int64_t> rows = where(robust);
    if (rows.empty()) break;
    std::vector<int64_t> target_all = class_at_rank(clean, t + 2), ys, target;
    for (int64_t r : rows) {
      ys.push_back(y[static_cast<size_t>(r)]);
      target.push_back(target_all[static_cast<size_t>(r)]);
    }
    Tensor xs = take_rows(x, rows);
    FabRun run = fab_single_run(model, xs, ys, target, opt);
    // Accept a row only if it is misclassified and within eps (FAB minimises
    // the distance but may end above eps).
    Tensor cand = from_host(run.adv, xs.shape(), xs);
    HostLogits h;
    {
      NoGradGuard no_grad;
      h = host_logits(model(cand));
    }
    std::vector<int64_t> broken_rows, broken_local;
    for (size_t j = 0; j < rows.size(); ++j)
      if (run.dist[j] <= opt.epsilon && h.pred[j] != ys[j]) {
        broken_rows.push_back(rows[j]);
        broken_local.push_back(static_cast<int64_t>(j));
        robust[static_cast<size_t>(rows[j])] = 0;
      }
    if (!broken_rows.empty()) adv = put_rows(adv, broken_rows, take_rows(cand, broken_local));
  }
  return adv;
}

}  // namespace advcl::autoattack
