// Math of batch normalisation over x viewed as [N, C, S] (S = H*W, or 1 for
// [N, C] inputs), or as [N, S, C] for channels-last activations
// ([N, H, W, C], engine/ops/layout.h), shared by the CPU loops and the CUDA
// kernels. BNLayout::index is the one place the two layouts differ.
//
// The N rows hold V equal views of B rows; each view may be split further
// into statistics groups of G rows (ghost statistics; the last group may be
// shorter). A (view, group) pair is a statistics UNIT: every (unit, channel)
// gets its own mean and variance, so all views are normalised in one pass.
//
// Statistics are reduced in two fixed-order levels, deterministic on both
// devices: a unit's rows are cut into CHUNKS of about kBnChunkValues values
// (whole rows); each chunk's sums accumulate in a type Acc around a shift
// (the unit's first value of the channel, which keeps float sums of squares
// from cancelling), and the chunks combine in double, in chunk order, into
// plain per-(unit, channel) sums. The sums are what a synchronised mode
// all-reduces; likewise the backward's two sums.
//
// Acc: a GPU block accumulates in the input's precision (float for float32:
// each thread sums a few values, the block's tree and the combine are in
// double), which keeps the kernel memory-bound on every GPU. The CPU loop
// runs the same functions with Acc = double: a CPU thread sums a whole chunk
// sequentially, where float would lose digits that the training results
// (and the multi-rank equivalence tests) depend on, and double costs it
// little.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

// Values per statistics chunk (a GPU block's work; a CPU task's).
constexpr int64_t kBnChunkValues = 4096;
// Views per call: the per-view parameter tables below are passed by value to
// GPU kernels.
constexpr int kBnMaxViews = 16;

struct BNLayout {
  int64_t N, C, S;
  int64_t B;  // rows per view
  int64_t G;  // rows per statistics group inside a view (B: the view is one group)
  bool channels_last = false;  // [N, S, C] in memory instead of [N, C, S]

  // Where value (row r, channel c, position s) lives, and the distance
  // between consecutive positions of one channel.
  ADVCL_HD int64_t index(int64_t r, int64_t c, int64_t s) const {
    return channels_last ? (r * S + s) * C + c : (r * C + c) * S + s;
  }
  ADVCL_HD int64_t position_stride() const { return channels_last ? C : 1; }
  // The (unit, channel) entry of element i.
  ADVCL_HD int64_t unit_channel(int64_t i) const {
    int64_t c = channels_last ? i % C : (i / S) % C;
    return unit_of_row(i / (C * S)) * C + c;
  }

  ADVCL_HD int64_t views() const { return N / B; }
  ADVCL_HD int64_t groups() const { return (B + G - 1) / G; }
  ADVCL_HD int64_t units() const { return views() * groups(); }
  ADVCL_HD int64_t view_of(int64_t u) const { return u / groups(); }
  ADVCL_HD bool first_group(int64_t u) const { return u % groups() == 0; }
  ADVCL_HD int64_t first_row(int64_t u) const { return view_of(u) * B + (u % groups()) * G; }
  ADVCL_HD int64_t rows(int64_t u) const {
    int64_t r = B - (u % groups()) * G;
    return r < G ? r : G;
  }
  ADVCL_HD int64_t unit_of_row(int64_t n) const { return (n / B) * groups() + (n % B) / G; }
  // Rows per chunk, and chunks per unit (as many as the longest unit needs;
  // a shorter last group leaves its trailing chunks empty).
  ADVCL_HD int64_t chunk_rows() const { return S >= kBnChunkValues ? 1 : kBnChunkValues / S; }
  ADVCL_HD int64_t chunks() const { return (G + chunk_rows() - 1) / chunk_rows(); }
  // Rows [r0, r1) of chunk k of unit u (r0 == r1 when empty).
  ADVCL_HD void chunk_range(int64_t u, int64_t k, int64_t& r0, int64_t& r1) const {
    int64_t begin = first_row(u), end = begin + rows(u);
    r0 = begin + k * chunk_rows();
    r0 = r0 < end ? r0 : end;
    r1 = r0 + chunk_rows();
    r1 = r1 < end ? r1 : end;
  }
  // Values per channel in unit u, where a full group's count is `full_count`
  // (the global count when synchronised; a shorter group only arises with
  // ghost statistics, which are never synchronised).
  ADVCL_HD double count(int64_t u, double full_count) const {
    return rows(u) == G ? full_count : static_cast<double>(rows(u) * S);
  }
};

// The value the shifted sums of (unit u, channel c) are taken around.
template <class T>
ADVCL_HD T bn_shift(const T* x, const BNLayout& L, int64_t u, int64_t c) {
  return x[L.index(L.first_row(u), c, 0)];
}

// One value into a chunk's shifted sums.
template <class Acc, class T>
ADVCL_HD void bn_accumulate(T v, Acc shift, Acc& s, Acc& q) {
  Acc d = static_cast<Acc>(v) - shift;
  s += d;
  q += d * d;
}

// One (g, x) pair into a chunk's backward sums: sum(g), sum(g * (x - mean)).
template <class Acc, class T>
ADVCL_HD void bn_accumulate_backward(T g, T x, Acc mean, Acc& a, Acc& b) {
  Acc gv = static_cast<Acc>(g);
  a += gv;
  b += gv * (static_cast<Acc>(x) - mean);
}

// A chunk's shifted sums, sequentially (the CPU's partial; a GPU block
// spreads the same accumulation over its threads). Four accumulators break
// the dependency chain and let the compiler vectorise.
template <class Acc, class T>
ADVCL_HD void bn_chunk_sums(const T* x, const BNLayout& L, int64_t u, int64_t c, int64_t k, Acc shift, double& s_out,
                            double& q_out) {
  int64_t r0, r1;
  L.chunk_range(u, k, r0, r1);
  Acc s[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
  const int64_t step = L.position_stride();
  for (int64_t r = r0; r < r1; ++r) {
    const T* p = x + L.index(r, c, 0);
    int64_t j = 0;
    for (; j + 4 <= L.S; j += 4)
      for (int l = 0; l < 4; ++l) bn_accumulate(p[(j + l) * step], shift, s[l], q[l]);
    for (; j < L.S; ++j) bn_accumulate(p[j * step], shift, s[0], q[0]);
  }
  s_out = static_cast<double>((s[0] + s[1]) + (s[2] + s[3]));
  q_out = static_cast<double>((q[0] + q[1]) + (q[2] + q[3]));
}

// A chunk's backward sums, sequentially (as bn_chunk_sums).
template <class Acc, class T>
ADVCL_HD void bn_chunk_backward_sums(const T* g, const T* x, const BNLayout& L, int64_t u, int64_t c, int64_t k,
                                     Acc mean, double& a_out, double& b_out) {
  int64_t r0, r1;
  L.chunk_range(u, k, r0, r1);
  Acc a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
  const int64_t step = L.position_stride();
  for (int64_t r = r0; r < r1; ++r) {
    int64_t at = L.index(r, c, 0);
    const T *gp = g + at, *xp = x + at;
    int64_t j = 0;
    for (; j + 4 <= L.S; j += 4)
      for (int l = 0; l < 4; ++l) bn_accumulate_backward(gp[(j + l) * step], xp[(j + l) * step], mean, a[l], b[l]);
    for (; j < L.S; ++j) bn_accumulate_backward(gp[j * step], xp[j * step], mean, a[0], b[0]);
  }
  a_out = static_cast<double>((a[0] + a[1]) + (a[2] + a[3]));
  b_out = static_cast<double>((b[0] + b[1]) + (b[2] + b[3]));
}

// The final combine of one (unit, channel): its chunks' partials (in chunk
// order, double) back to plain sums:
//   sum x   = sum d + n a,   sum x^2 = sum d^2 + 2 a sum d + n a^2   (d = x - a)
ADVCL_HD void bn_combine_stats(const double* s, const double* q, int64_t chunks, double shift, double count,
                                      double& sum, double& sum_sq) {
  double ts = 0, tq = 0;
  for (int64_t k = 0; k < chunks; ++k) {
    ts += s[k];
    tq += q[k];
  }
  sum = ts + count * shift;
  sum_sq = tq + 2 * shift * ts + count * shift * shift;
}

// The chunks' partials of one (unit, channel), in chunk order.
ADVCL_HD double bn_combine(const double* p, int64_t chunks) {
  double t = 0;
  for (int64_t k = 0; k < chunks; ++k) t += p[k];
  return t;
}

// From (sum, sum_sq, count): mean and biased variance (clamped at 0 against rounding).
ADVCL_HD void bn_mean_var(double sum, double sum_sq, double count, double& mean, double& var) {
  mean = sum / count;
  var = sum_sq / count - mean * mean;
  var = var > 0 ? var : 0;
}

// Training, one (unit, channel): the mean and 1/sqrt(var + eps) to normalise
// with, from the batch sums, and the momentum update of the running
// statistics (either pointer may be null) with the UNBIASED variance
// var * count / (count - 1).
template <class R>
ADVCL_HD void bn_train_channel(double sum, double sum_sq, double count, double eps, double momentum, R* running_mean,
                               R* running_var, double& mean, double& invstd) {
  double var;
  bn_mean_var(sum, sum_sq, count, mean, var);
  invstd = 1.0 / sqrt(var + eps);
  if (running_mean)
    *running_mean = static_cast<R>((1 - momentum) * static_cast<double>(*running_mean) + momentum * mean);
  if (running_var)
    *running_var =
        static_cast<R>((1 - momentum) * static_cast<double>(*running_var) + momentum * var * (count / (count - 1)));
}

// Eval: normalise with the running statistics.
template <class R>
ADVCL_HD void bn_eval_channel(R running_mean, R running_var, double eps, double& mean, double& invstd) {
  mean = static_cast<double>(running_mean);
  invstd = 1.0 / sqrt(static_cast<double>(running_var) + eps);
}

// Each view's parameter set, by view (null weight: 1, null bias: 0; null
// running statistics: not updated in training). Two views may share a set:
// its running statistics are then updated once per view, in view order.
template <class P>
struct BnViewParams {
  const P* weight[kBnMaxViews];
  const P* bias[kBnMaxViews];
  P* running_mean[kBnMaxViews];
  P* running_var[kBnMaxViews];
};

// Everything per (unit, channel) that the per-element passes need, for
// channel c of every unit, in unit order (so a set shared by several views
// sees its running-statistics updates in view order). Training: from the
// sums; only a view's first group updates the running statistics (as
// DataParallel's replica 0 does). Eval: from the running statistics. The
// arrays are [units, C].
template <class P>
ADVCL_HD void bn_finish_channel(const BNLayout& L, int64_t c, const BnViewParams<P>& p, bool training,
                                double full_count, double eps, double momentum, const double* sum,
                                const double* sum_sq, double* mean, double* invstd, double* w, double* b) {
  for (int64_t u = 0; u < L.units(); ++u) {
    int64_t v = L.view_of(u), at = u * L.C + c;
    w[at] = p.weight[v] ? static_cast<double>(p.weight[v][c]) : 1.0;
    b[at] = p.bias[v] ? static_cast<double>(p.bias[v][c]) : 0.0;
    if (training) {
      bool update = L.first_group(u);
      bn_train_channel(sum[at], sum_sq[at], L.count(u, full_count), eps, momentum,
                       update && p.running_mean[v] ? p.running_mean[v] + c : nullptr,
                       update && p.running_var[v] ? p.running_var[v] + c : nullptr, mean[at], invstd[at]);
    } else {
      bn_eval_channel(p.running_mean[v][c], p.running_var[v][c], eps, mean[at], invstd[at]);
    }
  }
}

// The forward of one (unit, channel) as an affine map of x:
//   y = (x - mean) * invstd * w + b = x * scale + shift,
// scale = invstd * w, shift = b - mean * scale: worked out once per
// (unit, channel), so the per-element pass is one multiply-add.
struct BnAffine {
  double scale, shift;
};
ADVCL_HD BnAffine bn_forward_affine(double mean, double invstd, double w, double b) {
  double scale = invstd * w;
  return {scale, b - mean * scale};
}
// relu: then max(0, y), the op's fused ReLU (BatchNormOptions::relu).
template <class T>
ADVCL_HD T bn_apply(T x, const BnAffine& a, bool relu) {
  T y = static_cast<T>(static_cast<double>(x) * a.scale + a.shift);
  return relu && !(y > 0) ? T(0) : y;
}

// The input gradient of one (unit, channel) as an affine map of (g, x).
// Training, with xhat = (x - mean) * invstd:
//   dx = w * invstd * (g - sum_g / count - xhat * sum_gx * invstd / count)
//      = a g + b x + c,  a = w invstd,  b = -a invstd^2 sum_gx / count,
//                        c = -a sum_g / count - b mean;
// eval (fixed statistics): dx = a g. Worked out once per (unit, channel):
// the per-element pass has no division left.
struct BnGradAffine {
  double a, b, c;
};
ADVCL_HD BnGradAffine bn_backward_affine(double mean, double invstd, double w, double sum_g, double sum_gx,
                                         double count, bool training) {
  double a = w * invstd;
  if (!training) return {a, 0, 0};
  double b = -a * invstd * invstd * sum_gx / count;
  return {a, b, -a * sum_g / count - b * mean};
}
template <class T>
ADVCL_HD T bn_apply_grad(T g, T x, const BnGradAffine& k) {
  return static_cast<T>(k.a * static_cast<double>(g) + k.b * static_cast<double>(x) + k.c);
}

// The parameter set of each view (an index into the call's distinct sets).
struct BnViewSets {
  int set[kBnMaxViews];
};

// Gradients of set k's weight and bias at channel c: the units of the views
// that use set k, in unit order. sum_g / sum_gx are this process's own
// (not all-reduced) [units, C] sums.
ADVCL_HD void bn_param_grads(const BNLayout& L, int64_t c, const BnViewSets& vs, int k, const double* sum_g,
                                    const double* sum_gx, const double* invstd, double& gw, double& gb) {
  gw = 0;
  gb = 0;
  for (int64_t u = 0; u < L.units(); ++u) {
    if (vs.set[L.view_of(u)] != k) continue;
    int64_t at = u * L.C + c;
    gw += sum_gx[at] * invstd[at];
    gb += sum_g[at];
  }
}

}  // namespace advcl::kernels
