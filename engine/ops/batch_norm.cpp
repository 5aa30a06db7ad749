#include "engine/ops/batch_norm.h"

#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/counters.h"
#include "engine/dispatch.h"
#include "engine/ops/batch_norm_cuda.h"
#include "engine/ops/elementwise.h"
#include "engine/parallel.h"

namespace advcl::ops {

using kernels::BNLayout;

namespace {

void check_input(const Tensor& x) {
  if (x.dim() != 2 && x.dim() != 4)
    fail("batch_norm: expected a [N, C] or [N, C, H, W] input, got shape ", shape_str(x.shape()));
}

// The layout of x in `views` equal views, statistics groups of `group_rows`
// rows (0: the whole view).
BNLayout make_layout(const Tensor& x, int64_t views, int64_t group_rows, bool channels_last) {
  check_input(x);
  int64_t N = x.size(0);
  if (views < 1 || views > kernels::kBnMaxViews)
    fail("batch_norm: ", views, " views; between 1 and ", kernels::kBnMaxViews, " are supported");
  if (N == 0 || N % views != 0)
    fail("batch_norm: ", N, " rows of input ", shape_str(x.shape()), " do not split into ", views, " equal views");
  int64_t B = N / views;
  if (group_rows < 0) fail("batch_norm: group_rows must be >= 0, got ", group_rows);
  int64_t G = group_rows == 0 || group_rows > B ? B : group_rows;
  if (x.dim() == 4 && channels_last) return {N, x.size(3), x.size(1) * x.size(2), B, G, true};
  return {N, x.size(1), x.dim() == 4 ? x.size(2) * x.size(3) : 1, B, G};
}

void check_param(const Tensor& x, int64_t channels, const Tensor& p, const char* what, size_t set) {
  if (!p.defined()) return;
  if (p.shape() != Shape{channels})
    fail("batch_norm: ", what, " of parameter set ", set, " has shape ", shape_str(p.shape()), ", expected [",
         channels, "] for input ", shape_str(x.shape()));
  check_same_device("batch_norm", p, x, what);
  if (!is_floating(p.dtype())) fail("batch_norm: ", what, " of parameter set ", set, " is not a floating tensor");
}

// The one element type of the call's parameters and running statistics
// (they are read and updated in place in it). Float64 when none is given.
DType param_dtype(const std::vector<BatchNormParams>& sets) {
  const Tensor* first = nullptr;
  for (size_t k = 0; k < sets.size(); ++k)
    for (const Tensor* t : {&sets[k].weight, &sets[k].bias, &sets[k].running_mean, &sets[k].running_var}) {
      if (!t->defined()) continue;
      if (!first) first = t;
      if (t->dtype() != first->dtype())
        fail("batch_norm: the parameters and running statistics must share one dtype; found ",
             dtype_name(first->dtype()), " and ", dtype_name(t->dtype()), " (parameter set ", k, ")");
    }
  return first ? first->dtype() : DType::Float64;
}

template <class P>
P* ptr(const Tensor& t) {
  return t.defined() ? t.data<P>() : nullptr;
}

template <class P>
kernels::BnViewParams<P> view_params(const BatchNormViews& v) {
  kernels::BnViewParams<P> p{};
  for (size_t i = 0; i < v.view_set.size(); ++i) {
    const BatchNormParams& s = v.sets[static_cast<size_t>(v.view_set[i])];
    p.weight[i] = ptr<P>(s.weight);
    p.bias[i] = ptr<P>(s.bias);
    p.running_mean[i] = ptr<P>(s.running_mean);
    p.running_var[i] = ptr<P>(s.running_var);
  }
  return p;
}

Tensor doubles(int64_t n, Device dev) { return Tensor::empty({n}, DType::Float64, dev); }

// Given statistics as float64 on `dev`, without a copy when they already are
// (a copy between devices would be a host round trip).
Tensor on_device_doubles(const Tensor& t, Device dev) {
  Tensor d = t.dtype() == DType::Float64 ? t : t.to(DType::Float64);
  return d.device() == dev ? d : d.to(dev);
}

// Channels-last chunk sums: one task per (unit, chunk) walks its rows once,
// all channels side by side (they are contiguous; a channel-at-a-time loop
// would stride through memory C values apart). ref(u, c) is the value a
// channel's terms are taken around (shift or mean), add(i, ref, a, b) adds
// element i to the channel's two sums, which land in pa / pb at
// [(unit * C + channel) * chunks + chunk], as the channel-at-a-time loop puts them.
template <class Ref, class Add>
void channels_last_chunk_sums(const BNLayout& L, double* pa, double* pb, Ref&& ref, Add&& add) {
  const int64_t K = L.chunks(), C = L.C;
  parallel_for(L.units() * K, [&](int64_t task) {
    int64_t u = task / K, k = task % K, r0, r1;
    L.chunk_range(u, k, r0, r1);
    std::vector<double> m(static_cast<size_t>(C)), a(m.size()), b(m.size());
    for (int64_t c = 0; c < C; ++c) m[c] = ref(u, c);
    for (int64_t at = L.index(r0, 0, 0); at < L.index(r1, 0, 0); at += C)
      for (int64_t c = 0; c < C; ++c) add(at + c, m[c], a[c], b[c]);
    for (int64_t c = 0; c < C; ++c) {
      pa[(u * C + c) * K + k] = a[c];
      pb[(u * C + c) * K + k] = b[c];
    }
  }, 1);
}

// Calls f(i, at) for every element i of x with its (unit, channel) entry at.
// A task takes a run of values whose entries follow from its start: one
// (image, channel) plane (one entry), or in channels-last one position's C
// contiguous channels (consecutive entries).
template <class F>
void for_each_element(const BNLayout& L, F&& f) {
  const int64_t runs = L.N * (L.channels_last ? L.S : L.C), run = L.channels_last ? L.C : L.S;
  parallel_for(runs, [&](int64_t j) {
    const int64_t first = j * run, at0 = L.unit_channel(first);
    if (L.channels_last)
      for (int64_t c = 0; c < run; ++c) f(first + c, at0 + c);
    else
      for (int64_t i = first; i < first + run; ++i) f(i, at0);
  }, L.channels_last ? 64 : 16);
}

// Per-(unit, channel) shifted chunk sums combined into plain sums.
ChannelStats unit_stats(const Tensor& x, const BNLayout& L) {
  int64_t UC = L.units() * L.C, K = L.chunks();
  Device dev = x.device();
  ChannelStats st{doubles(UC, dev), doubles(UC, dev), L.G * L.S};
  Tensor part_s = doubles(UC * K, dev), part_q = doubles(UC * K, dev);
  visit_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    double *ps = part_s.data<double>(), *pq = part_q.data<double>();
    double *sp = st.sum.data<double>(), *qp = st.sum_sq.data<double>();
    const bool cuda = on_cuda("batch_norm", dev);
    if (cuda) {
      ADVCL_CUDA_ONLY(cuda_ops::bn_stats(xp, L, ps, pq, sp, qp));
    } else if (L.channels_last) {
      channels_last_chunk_sums(
          L, ps, pq, [&](int64_t u, int64_t c) { return static_cast<double>(kernels::bn_shift(xp, L, u, c)); },
          [&](int64_t i, double shift, double& s, double& q) { kernels::bn_accumulate<double>(xp[i], shift, s, q); });
    } else {
      parallel_for(UC * K, [&](int64_t i) {
        int64_t uc = i / K, u = uc / L.C, c = uc % L.C;
        kernels::bn_chunk_sums<double>(xp, L, u, c, i % K, static_cast<double>(kernels::bn_shift(xp, L, u, c)),
                                       ps[i], pq[i]);
      }, 2);
    }
    if (!cuda) {
      for (int64_t uc = 0; uc < UC; ++uc) {
        int64_t u = uc / L.C, c = uc % L.C;
        kernels::bn_combine_stats(ps + uc * K, pq + uc * K, K, static_cast<double>(kernels::bn_shift(xp, L, u, c)),
                                  static_cast<double>(L.rows(u) * L.S), sp[uc], qp[uc]);
      }
    }
  });
  return st;
}

// Everything backward needs, kept by the node. mean, invstd, w: float64
// [units * C] on x's device.
struct Saved {
  Tensor x;
  BNLayout L;
  Tensor mean, invstd, w;
  bool training;
  double full_count;
  ReduceSums reduce;
  kernels::BnViewSets view_sets;
  std::vector<bool> has_w, has_b, used;  // per set
  DType param_dtype;
  Tensor relu_out;  // the output, where a ReLU follows in the same op (its gradient's mask)
};

std::vector<Tensor> backward(const Saved& s, const Tensor& g, const Needs& needs) {
  const BNLayout& L = s.L;
  int64_t UC = L.units() * L.C, K = L.chunks(), C = L.C;
  Device dev = g.device();
  bool cuda = on_cuda("batch_norm backward", dev);
  Tensor sum_g = doubles(UC, dev), sum_gx = doubles(UC, dev);
  visit_float(g.dtype(), "batch_norm backward", [&](auto tag) {
    using T = decltype(tag);
    const T *gp = g.data<T>(), *xp = s.x.data<T>();
    const double* mean = s.mean.data<double>();
    double *sg = sum_g.data<double>(), *sgx = sum_gx.data<double>();
    if (cuda) {
      Tensor part_g = doubles(UC * K, dev), part_gx = doubles(UC * K, dev);
      ADVCL_CUDA_ONLY(
          cuda_ops::bn_backward_sums(gp, xp, L, mean, part_g.data<double>(), part_gx.data<double>(), sg, sgx));
    } else {
      std::vector<double> pg(static_cast<size_t>(UC * K)), pgx(pg.size());
      if (L.channels_last) {
        channels_last_chunk_sums(
            L, pg.data(), pgx.data(), [&](int64_t u, int64_t c) { return mean[u * C + c]; },
            [&](int64_t i, double m, double& a, double& b) {
              kernels::bn_accumulate_backward<double>(gp[i], xp[i], m, a, b);
            });
      } else {
        parallel_for(UC * K, [&](int64_t i) {
          int64_t uc = i / K;
          kernels::bn_chunk_backward_sums<double>(gp, xp, L, uc / C, uc % C, i % K, mean[uc], pg[i], pgx[i]);
        }, 2);
      }
      for (int64_t uc = 0; uc < UC; ++uc) {
        sg[uc] = kernels::bn_combine(pg.data() + uc * K, K);
        sgx[uc] = kernels::bn_combine(pgx.data() + uc * K, K);
      }
    }
  });
  // Synchronised BN: the weight and bias gradients are this process's own
  // contribution (the data-parallel gradient average combines the ranks',
  // as for every other parameter); only the input gradient needs the global sums.
  Tensor local_g = sum_g, local_gx = sum_gx;
  if (s.training && s.reduce) {
    sum_g = sum_g.clone();
    sum_gx = sum_gx.clone();
    s.reduce(sum_g, sum_gx);
  }
  size_t n_sets = s.has_w.size();
  std::vector<Tensor> r(1 + 2 * n_sets);
  if (needs[0]) {
    Tensor gx = Tensor::empty(s.x.shape(), s.x.dtype(), s.x.device());
    visit_float(g.dtype(), "batch_norm backward", [&](auto tag) {
      using T = decltype(tag);
      const T *gp = g.data<T>(), *xp = s.x.data<T>();
      const double *mean = s.mean.data<double>(), *invstd = s.invstd.data<double>(), *w = s.w.data<double>();
      const double *sg = sum_g.data<double>(), *sgx = sum_gx.data<double>();
      T* out = gx.data<T>();
      if (cuda) {
        ADVCL_CUDA_ONLY(
            cuda_ops::bn_backward_elem(gp, xp, L, mean, invstd, w, sg, sgx, s.training, s.full_count, out));
      } else {
        // The affine map of each (unit, channel), then one multiply-add per element.
        std::vector<kernels::BnGradAffine> k(static_cast<size_t>(UC));
        for (int64_t at = 0; at < UC; ++at)
          k[at] = kernels::bn_backward_affine(mean[at], invstd[at], w[at], sg[at], sgx[at],
                                              L.count(at / C, s.full_count), s.training);
        for_each_element(L, [&](int64_t i, int64_t at) { out[i] = kernels::bn_apply_grad(gp[i], xp[i], k[at]); });
      }
    });
    r[0] = gx;
  }
  bool any_param = false;
  for (size_t k = 0; k < n_sets; ++k)
    any_param = any_param || (s.used[k] && ((s.has_w[k] && needs[1 + 2 * k]) || (s.has_b[k] && needs[2 + 2 * k])));
  if (any_param) {
    // [sets, C] float64: each set's gradients summed over its views' units.
    auto K = static_cast<int64_t>(n_sets);
    Tensor gw = doubles(K * C, dev), gb = doubles(K * C, dev);
    const double *lg = local_g.data<double>(), *lgx = local_gx.data<double>(), *invstd = s.invstd.data<double>();
    double *gwp = gw.data<double>(), *gbp = gb.data<double>();
    if (cuda) {
      ADVCL_CUDA_ONLY(cuda_ops::bn_param_grads(L, s.view_sets, K, lg, lgx, invstd, gwp, gbp));
    } else {
      for (int64_t i = 0; i < K * C; ++i)
        kernels::bn_param_grads(L, i % C, s.view_sets, static_cast<int>(i / C), lg, lgx, invstd, gwp[i], gbp[i]);
    }
    for (size_t k = 0; k < n_sets; ++k) {
      auto row = static_cast<int64_t>(k);
      if (!s.used[k]) continue;  // a set no view uses gets no gradient
      if (s.has_w[k] && needs[1 + 2 * k]) r[1 + 2 * k] = gw.narrow0(row * C, C).to(s.param_dtype);
      if (s.has_b[k] && needs[2 + 2 * k]) r[2 + 2 * k] = gb.narrow0(row * C, C).to(s.param_dtype);
    }
  }
  return r;
}

// Normalises x with per-(unit, channel) statistics: `stats` (training; null:
// computed here) or the running statistics (eval), and records the node.
Tensor run(const Tensor& x, const BatchNormViews& v, BatchNormOptions opt, const BNLayout& L,
           const ChannelStats* given, const ReduceStats& reduce_stats, ReduceSums reduce_backward_sums) {
  if (static_cast<int64_t>(v.view_set.size()) != L.views())
    fail("batch_norm: ", v.view_set.size(), " view sets for ", L.views(), " views");
  for (size_t k = 0; k < v.sets.size(); ++k) {
    check_param(x, L.C, v.sets[k].weight, "weight", k);
    check_param(x, L.C, v.sets[k].bias, "bias", k);
    check_param(x, L.C, v.sets[k].running_mean, "running_mean", k);
    check_param(x, L.C, v.sets[k].running_var, "running_var", k);
  }
  for (int s : v.view_set)
    if (s < 0 || static_cast<size_t>(s) >= v.sets.size())
      fail("batch_norm: a view names parameter set ", s, "; the call has ", v.sets.size());
  counters::bump("batch_norm.forward");
  int64_t UC = L.units() * L.C;
  Device dev = x.device();
  ChannelStats st;
  if (opt.training) {
    st = given ? *given : unit_stats(x, L);
    if (reduce_stats) reduce_stats(st);
    // After any all-reduce: a rank may hold a single value per channel when
    // the statistics are global.
    for (int64_t u = 0; u < L.units(); ++u)
      if (L.count(u, static_cast<double>(st.count)) <= 1)
        fail("batch_norm: training needs more than one value per channel, got input shape ", shape_str(x.shape()),
             L.units() > 1 ? " (per view or group)" : "");
    if (st.sum.numel() != UC || st.sum_sq.numel() != UC)
      fail("batch_norm: statistics of ", st.sum.numel(), " values for ", L.units(), " units of ", L.C, " channels");
    st.sum = on_device_doubles(st.sum, dev);
    st.sum_sq = on_device_doubles(st.sum_sq, dev);
  } else {
    for (int s : v.view_set)
      if (!v.sets[static_cast<size_t>(s)].running_mean.defined() || !v.sets[static_cast<size_t>(s)].running_var.defined())
        fail("batch_norm: eval mode needs running_mean and running_var");
  }
  DType pt = param_dtype(v.sets);
  Saved s{Tensor(), L, doubles(UC, dev), doubles(UC, dev), doubles(UC, dev), opt.training,
          static_cast<double>(st.count), reduce_backward_sums, {}, {}, {}, {}, pt, Tensor()};
  for (size_t i = 0; i < v.view_set.size(); ++i) s.view_sets.set[i] = v.view_set[i];
  Tensor bias = doubles(UC, dev);
  // Mean, invstd, w and b per (unit, channel); training also updates the running statistics in place.
  visit_float(pt, "batch_norm parameters", [&](auto tag) {
    using P = decltype(tag);
    kernels::BnViewParams<P> p = view_params<P>(v);
    const double* sp = opt.training ? st.sum.data<double>() : nullptr;
    const double* qp = opt.training ? st.sum_sq.data<double>() : nullptr;
    double *mean = s.mean.data<double>(), *invstd = s.invstd.data<double>();
    double *w = s.w.data<double>(), *b = bias.data<double>();
    if (on_cuda("batch_norm parameters", dev)) {
      ADVCL_CUDA_ONLY(cuda_ops::bn_finish(L, p, opt.training, s.full_count, opt.eps, opt.momentum, sp, qp, mean,
                                          invstd, w, b));
    } else {
      for (int64_t c = 0; c < L.C; ++c)
        kernels::bn_finish_channel(L, c, p, opt.training, s.full_count, opt.eps, opt.momentum, sp, qp, mean, invstd,
                                   w, b);
    }
  });
  Tensor y = Tensor::empty(x.shape(), x.dtype(), dev);
  visit_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const double *mean = s.mean.data<double>(), *invstd = s.invstd.data<double>();
    const double *wp = s.w.data<double>(), *bp = bias.data<double>();
    if (on_cuda("batch_norm", dev)) {
      ADVCL_CUDA_ONLY(cuda_ops::bn_normalize(xp, L, mean, invstd, wp, bp, opt.relu, yp));
    } else {
      // The affine map of each (unit, channel), then one multiply-add per element.
      std::vector<kernels::BnAffine> k(static_cast<size_t>(UC));
      for (int64_t at = 0; at < UC; ++at) k[at] = kernels::bn_forward_affine(mean[at], invstd[at], wp[at], bp[at]);
      const bool relu = opt.relu;
      for_each_element(L, [&](int64_t i, int64_t at) { yp[i] = kernels::bn_apply(xp[i], k[at], relu); });
    }
  });
  std::vector<Tensor> inputs{x};
  for (const BatchNormParams& p : v.sets) {
    inputs.push_back(p.weight);
    inputs.push_back(p.bias);
    s.has_w.push_back(p.weight.defined());
    s.has_b.push_back(p.bias.defined());
    s.used.push_back(false);
  }
  for (int k : v.view_set) s.used[static_cast<size_t>(k)] = true;
  if (needs_graph(inputs)) {
    s.x = x.detach();
    if (opt.relu) s.relu_out = y.detach();
    record(y, opt.relu ? "batch_norm_relu" : "batch_norm", std::move(inputs),
           [saved = std::move(s)](const Tensor& g, const Needs& needs) {
             return backward(saved, saved.relu_out.defined() ? relu_backward(saved.relu_out, g) : g, needs);
           });
  }
  return y;
}

// Eval of an empty batch (a rank's share of a short last batch) is an empty
// output, as torch gives; training needs values and fails in run().
bool empty_eval(const Tensor& x, const BatchNormOptions& opt) {
  check_input(x);
  return !opt.training && x.size(0) == 0;
}

BatchNormViews one_view(const Tensor& w, const Tensor& b, const Tensor& running_mean, const Tensor& running_var) {
  return BatchNormViews{{BatchNormParams{w, b, running_mean, running_var}}, {0}, 0};
}

}  // namespace

ChannelStats batch_norm_stats(const Tensor& x, bool channels_last) {
  return unit_stats(x, make_layout(x, 1, 0, channels_last));
}

Tensor batch_norm_with_stats(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& running_mean,
                             const Tensor& running_var, const ChannelStats& stats, BatchNormOptions opt,
                             ReduceSums reduce_backward_sums) {
  opt.training = true;
  return run(x, one_view(w, b, running_mean, running_var), opt, make_layout(x, 1, 0, opt.channels_last), &stats, {},
             reduce_backward_sums);
}

Tensor batch_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormOptions opt) {
  if (empty_eval(x, opt)) return Tensor::empty(x.shape(), x.dtype(), x.device());
  return run(x, one_view(w, b, running_mean, running_var), opt, make_layout(x, 1, 0, opt.channels_last), nullptr, {},
             nullptr);
}

Tensor batch_norm_views(const Tensor& x, const BatchNormViews& views, BatchNormOptions opt,
                        const ReduceStats& reduce_stats, ReduceSums reduce_backward_sums) {
  if (empty_eval(x, opt)) return Tensor::empty(x.shape(), x.dtype(), x.device());
  BNLayout L = make_layout(x, static_cast<int64_t>(views.view_set.size()), views.group_rows, opt.channels_last);
  return run(x, views, opt, L, nullptr, reduce_stats, reduce_backward_sums);
}

}  // namespace advcl::ops
