#include "advcl/attacks/square.h"

#include <algorithm>
#include <cmath>

#include "engine/ops.h"

namespace advcl::autoattack {

double square_p(int it, double p_init) {
  // Upper ends of the schedule's intervals; p halves after each.
  static const int kEnds[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
  double p = p_init;
  for (int end : kEnds)
    if (it > end) p /= 2;
  return p;
}

int64_t square_side(double p, int64_t H, int64_t W) {
  // std::nearbyint rounds half to even under the default rounding mode, as Python's round.
  int64_t s = static_cast<int64_t>(std::nearbyint(std::sqrt(p * static_cast<double>(H * W))));
  return std::min(std::max<int64_t>(s, 1), std::min(H, W));
}

std::vector<double> margins(const HostLogits& h, const std::vector<int64_t>& y) {
  std::vector<double> m(static_cast<size_t>(h.rows));
  for (int64_t r = 0; r < h.rows; ++r) {
    int64_t yr = y[static_cast<size_t>(r)];
    double other = -INFINITY;
    for (int64_t c = 0; c < h.classes; ++c)
      if (c != yr) other = std::max(other, h.at(r, c));
    m[static_cast<size_t>(r)] = h.at(r, yr) - other;
  }
  return m;
}

namespace {

std::vector<double> margins_of(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y) {
  NoGradGuard no_grad;
  return margins(host_logits(model(x)), y);
}

// +-eps stripes: one sign per (channel, column), constant down each column.
Tensor initial_stripes(const Tensor& xs, const std::vector<int64_t>& ids, double eps, uint64_t seed) {
  const int64_t n = xs.size(0), C = xs.size(1), W = xs.size(3);
  std::vector<double> v(static_cast<size_t>(n * C * W));
  for (int64_t r = 0; r < n; ++r) {
    RngKey key{seed, static_cast<uint32_t>(RngPurpose::SquareInit), 0, static_cast<uint32_t>(ids[static_cast<size_t>(r)])};
    for (int64_t i = 0; i < C * W; ++i)
      v[static_cast<size_t>(r * C * W + i)] = (key.word(static_cast<uint64_t>(i)) & 1u) ? eps : -eps;
  }
  return from_host(v, {n, C, 1, W}, xs);
}

// The iteration's step: +-2 eps per channel on an s x s window, 0 elsewhere.
Tensor square_step(const Tensor& like, int it, double eps, uint64_t seed, int64_t s) {
  const int64_t C = like.size(1), H = like.size(2), W = like.size(3);
  RngKey key{seed, static_cast<uint32_t>(RngPurpose::SquareStep), static_cast<uint32_t>(it), 0};
  // Top-left corner uniform in [0, H - s) as the reference (0 when s = H):
  // the last position is never drawn.
  int64_t vh = H > s ? key.below(0, static_cast<uint32_t>(H - s)) : 0;
  int64_t vw = W > s ? key.below(1, static_cast<uint32_t>(W - s)) : 0;
  std::vector<double> v(static_cast<size_t>(C * H * W), 0.0);
  for (int64_t c = 0; c < C; ++c) {
    double sgn = (key.word(4 + static_cast<uint64_t>(c)) & 1u) ? 2 * eps : -2 * eps;
    for (int64_t h = vh; h < vh + s; ++h)
      for (int64_t w = vw; w < vw + s; ++w) v[static_cast<size_t>((c * H + h) * W + w)] = sgn;
  }
  return from_host(v, {1, C, H, W}, like);
}

}  // namespace

Tensor square_linf(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y,
                   const std::vector<int64_t>& ids, const SquareOptions& opt) {
  check_batch("square_linf", x, y, ids);
  if (x.dim() != 4) fail("square_linf: needs images [N, C, H, W], got ", shape_str(x.shape()));
  if (!(opt.epsilon >= 0) || opt.queries < 0 || !(opt.p_init > 0 && opt.p_init <= 1))
    fail("square_linf: bad options (epsilon ", opt.epsilon, ", queries ", opt.queries, ", p_init ", opt.p_init, ")");
  NoGradGuard no_grad;
  const double eps = opt.epsilon;
  HostLogits clean = host_logits(model(x));
  std::vector<int64_t> rows, ys, row_ids;
  for (size_t r = 0; r < y.size(); ++r)
    if (clean.pred[r] == y[r]) {
      rows.push_back(static_cast<int64_t>(r));
      ys.push_back(y[r]);
      row_ids.push_back(ids[r]);
    }
  if (rows.empty()) return x;
  const Tensor xs = take_rows(x, rows);
  const int64_t H = x.size(2), W = x.size(3);

  Tensor x_best = ops::clamp(ops::add(xs, initial_stripes(xs, row_ids, eps, opt.seed)), 0.0, 1.0);
  std::vector<double> margin = margins_of(model, x_best, ys);
  std::vector<double> loss = margin;  // the margin loss

  // The working set: rows still correctly classified, compacted when it shrinks.
  std::vector<int64_t> work, yw;
  Tensor xbw;
  LinfBox box;  // the working rows' eps-ball in [0, 1]
  for (int it = 0; it < opt.queries; ++it) {
    std::vector<int64_t> active;
    for (size_t j = 0; j < margin.size(); ++j)
      if (margin[j] > 0) active.push_back(static_cast<int64_t>(j));
    if (active.empty()) break;
    if (active != work) {
      if (!work.empty()) x_best = put_rows(x_best, work, xbw);
      work = active;
      box = LinfBox(take_rows(xs, work), eps);
      xbw = take_rows(x_best, work);
      yw.clear();
      for (int64_t j : work) yw.push_back(ys[static_cast<size_t>(j)]);
    }
    // One query for every still-robust row: one window and one set of signs for all.
    const int64_t s = square_side(square_p(it, opt.p_init), H, W);
    Tensor x_new = box.clip(ops::add(xbw, square_step(xs, it, eps, opt.seed, s)));
    std::vector<double> m = margins_of(model, x_new, yw);
    std::vector<uint8_t> keep(work.size());
    for (size_t k = 0; k < work.size(); ++k) {
      size_t j = static_cast<size_t>(work[k]);
      bool lower = m[k] < loss[j];
      if (lower) loss[j] = m[k];
      keep[k] = lower || m[k] <= 0;  // a misclassified candidate is kept even if its loss is not lower
      if (keep[k]) margin[j] = m[k];
    }
    xbw = blend_rows(xbw, x_new, keep);
  }
  if (!work.empty()) x_best = put_rows(x_best, work, xbw);

  // Adopt the rows that end misclassified.
  std::vector<int64_t> broken_rows, broken_local;
  HostLogits h = host_logits(model(x_best));
  for (size_t j = 0; j < rows.size(); ++j)
    if (h.pred[j] != ys[j]) {
      broken_rows.push_back(rows[j]);
      broken_local.push_back(static_cast<int64_t>(j));
    }
  if (broken_rows.empty()) return x;
  return put_rows(x, broken_rows, take_rows(x_best, broken_local));
}

}  // namespace advcl::autoattack
