#include "engine/ops/batch_norm.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/batch_norm_cuda.h"
#include "engine/parallel.h"

namespace advcl::ops {

using kernels::BNShape;

namespace {

BNShape bn_shape(const Tensor& x) {
  if (x.dim() != 2 && x.dim() != 4)
    fail("batch_norm: expected a [N, C] or [N, C, H, W] input, got shape ", shape_str(x.shape()));
  return {x.size(0), x.size(1), x.dim() == 4 ? x.size(2) * x.size(3) : 1};
}

void check_param(const Tensor& x, const Tensor& p, const char* what) {
  if (!p.defined()) return;
  if (p.shape() != Shape{x.size(1)})
    fail("batch_norm: ", what, " has shape ", shape_str(p.shape()), ", expected [", x.size(1), "] for input ",
         shape_str(x.shape()));
  if (p.device() != x.device()) fail("batch_norm: ", what, " is on ", p.device().str(), ", input on ", x.device().str());
}

// Per-channel values as host doubles (a defined [C] tensor of any float dtype), or `fill`.
std::vector<double> host_values(const Tensor& t, int64_t C, double fill) {
  if (!t.defined()) return std::vector<double>(static_cast<size_t>(C), fill);
  return t.to(DType::Float64).to_vector<double>();
}

Tensor device_doubles(const std::vector<double>& v, Device dev) {
  return Tensor::from_vector<double>(v, {static_cast<int64_t>(v.size())}, dev);
}

// Writes host doubles into a [C] tensor of its own dtype and device.
void store(Tensor t, const std::vector<double>& v) {
  t.copy_(Tensor::from_vector<double>(v, t.shape()).to(t.dtype()).to(t.device()));
}

// Everything backward needs, kept by the node.
struct Saved {
  Tensor x;
  std::vector<double> mean, invstd, w;
  bool training;
  double count;
  ReduceSums reduce;
};

std::vector<Tensor> backward(const Saved& s, const Tensor& g, const Needs& needs, bool has_w, bool has_b) {
  BNShape sh = bn_shape(s.x);
  int64_t C = sh.C;
  std::vector<double> sum_g(static_cast<size_t>(C)), sum_gx(static_cast<size_t>(C));
  // Synchronised BN: the weight and bias gradients are this process's own
  // contribution (the data-parallel gradient average combines the ranks',
  // as for every other parameter); only the input gradient needs the global sums.
  std::vector<double> local_g, local_gx;
  Tensor gx;
  visit_float(g.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T *gp = g.data<T>(), *xp = s.x.data<T>();
    bool cuda = g.device().is_cuda();
    Tensor d_mean, d_invstd, d_w, d_sg, d_sgx;
    if (cuda) {
      d_mean = device_doubles(s.mean, g.device());
      Tensor a = Tensor::empty({C}, DType::Float64, g.device()), b = Tensor::empty({C}, DType::Float64, g.device());
      ADVCL_CUDA_ONLY(cuda_ops::bn_backward_sums(gp, xp, sh, d_mean.data<double>(), a.data<double>(), b.data<double>()));
      sum_g = a.to_vector<double>();
      sum_gx = b.to_vector<double>();
    } else {
      parallel_for(C, [&](int64_t c) { kernels::bn_backward_sums(gp, xp, sh, c, s.mean[c], sum_g[c], sum_gx[c]); }, 2);
    }
    local_g = sum_g;
    local_gx = sum_gx;
    if (s.training && s.reduce) s.reduce(sum_g, sum_gx);
    if (!needs[0]) return;
    gx = Tensor::empty(s.x.shape(), s.x.dtype(), s.x.device());
    T* out = gx.data<T>();
    if (cuda) {
      d_invstd = device_doubles(s.invstd, g.device());
      d_w = device_doubles(s.w, g.device());
      d_sg = device_doubles(sum_g, g.device());
      d_sgx = device_doubles(sum_gx, g.device());
      ADVCL_CUDA_ONLY(cuda_ops::bn_backward_elem(gp, xp, sh, d_mean.data<double>(), d_invstd.data<double>(),
                                                 d_w.data<double>(), d_sg.data<double>(), d_sgx.data<double>(),
                                                 s.training, s.count, out));
    } else {
      // One (image, channel) plane per task: the channel is fixed inside it.
      parallel_for(sh.N * C, [&](int64_t plane) {
        int64_t c = plane % C;
        const T *g_p = gp + plane * sh.S, *x_p = xp + plane * sh.S;
        T* o = out + plane * sh.S;
        for (int64_t k = 0; k < sh.S; ++k)
          o[k] = s.training ? kernels::bn_backward_elem(g_p[k], x_p[k], s.mean[c], s.invstd[c], s.w[c], sum_g[c],
                                                        sum_gx[c], s.count)
                            : static_cast<T>(static_cast<double>(g_p[k]) * s.w[c] * s.invstd[c]);
      }, 16);
    }
  });
  std::vector<Tensor> r(3);
  r[0] = gx;
  std::vector<double> gw(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) gw[c] = local_gx[c] * s.invstd[c];
  if (has_w && needs[1]) r[1] = Tensor::from_vector<double>(gw, {C}).to(g.dtype()).to(g.device());
  if (has_b && needs[2]) r[2] = Tensor::from_vector<double>(local_g, {C}).to(g.dtype()).to(g.device());
  return r;
}

Tensor normalize_and_record(const Tensor& x, const Tensor& w, const Tensor& b, Saved saved) {
  BNShape sh = bn_shape(x);
  std::vector<double> bias = host_values(b, sh.C, 0.0);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  visit_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    if (x.device().is_cuda()) {
      Tensor m = device_doubles(saved.mean, x.device()), is = device_doubles(saved.invstd, x.device());
      Tensor dw = device_doubles(saved.w, x.device()), db = device_doubles(bias, x.device());
      ADVCL_CUDA_ONLY(cuda_ops::bn_normalize(xp, sh, m.data<double>(), is.data<double>(), dw.data<double>(),
                                             db.data<double>(), yp));
    } else {
      parallel_for(sh.N * sh.C, [&](int64_t plane) {
        int64_t c = plane % sh.C;
        const T* x_p = xp + plane * sh.S;
        T* y_p = yp + plane * sh.S;
        for (int64_t k = 0; k < sh.S; ++k)
          y_p[k] = kernels::bn_normalize(x_p[k], saved.mean[c], saved.invstd[c], saved.w[c], bias[c]);
      }, 16);
    }
  });
  if (needs_graph({x, w, b})) {
    saved.x = x.detach();
    bool has_w = w.defined(), has_b = b.defined();
    record(y, "batch_norm", {x, w, b}, [saved, has_w, has_b](const Tensor& g, const Needs& needs) {
      return backward(saved, g, needs, has_w, has_b);
    });
  }
  return y;
}

}  // namespace

ChannelStats batch_norm_stats(const Tensor& x) {
  BNShape sh = bn_shape(x);
  ChannelStats st{Tensor::empty({sh.C}, DType::Float64, x.device()), Tensor::empty({sh.C}, DType::Float64, x.device()),
                  sh.N * sh.S};
  visit_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    double *sp = st.sum.data<double>(), *qp = st.sum_sq.data<double>();
    if (x.device().is_cuda())
      ADVCL_CUDA_ONLY(cuda_ops::bn_channel_sums(xp, sh, sp, qp));
    else
      parallel_for(sh.C, [&](int64_t c) { kernels::bn_channel_sums(xp, sh, c, sp[c], qp[c]); }, 2);
  });
  return st;
}

Tensor batch_norm_with_stats(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& running_mean,
                             const Tensor& running_var, const ChannelStats& stats, BatchNormOptions opt,
                             ReduceSums reduce_backward_sums) {
  BNShape sh = bn_shape(x);
  if (stats.count <= 1)
    fail("batch_norm: training needs more than one value per channel, got input shape ", shape_str(x.shape()));
  std::vector<double> sum = stats.sum.to_vector<double>(), sum_sq = stats.sum_sq.to_vector<double>();
  Saved s{Tensor(), std::vector<double>(sh.C), std::vector<double>(sh.C), host_values(w, sh.C, 1.0), true,
          static_cast<double>(stats.count), reduce_backward_sums};
  std::vector<double> var(sh.C);
  for (int64_t c = 0; c < sh.C; ++c) {
    kernels::bn_mean_var(sum[c], sum_sq[c], s.count, s.mean[c], var[c]);
    s.invstd[c] = 1.0 / std::sqrt(var[c] + opt.eps);
  }
  // Running statistics: momentum update with the UNBIASED variance.
  if (running_mean.defined()) {
    std::vector<double> rm = host_values(running_mean, sh.C, 0.0);
    for (int64_t c = 0; c < sh.C; ++c) rm[c] = (1 - opt.momentum) * rm[c] + opt.momentum * s.mean[c];
    store(running_mean, rm);
  }
  if (running_var.defined()) {
    std::vector<double> rv = host_values(running_var, sh.C, 1.0);
    double unbias = s.count / (s.count - 1);
    for (int64_t c = 0; c < sh.C; ++c) rv[c] = (1 - opt.momentum) * rv[c] + opt.momentum * var[c] * unbias;
    store(running_var, rv);
  }
  return normalize_and_record(x, w, b, std::move(s));
}

Tensor batch_norm(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& running_mean,
                  const Tensor& running_var, BatchNormOptions opt) {
  BNShape sh = bn_shape(x);
  check_param(x, w, "weight");
  check_param(x, b, "bias");
  check_param(x, running_mean, "running_mean");
  check_param(x, running_var, "running_var");
  if (opt.training) return batch_norm_with_stats(x, w, b, running_mean, running_var, batch_norm_stats(x), opt);
  if (!running_mean.defined() || !running_var.defined())
    fail("batch_norm: eval mode needs running_mean and running_var");
  Saved s{Tensor(), host_values(running_mean, sh.C, 0.0), host_values(running_var, sh.C, 1.0),
          host_values(w, sh.C, 1.0), false, static_cast<double>(sh.N * sh.S), nullptr};
  for (double& v : s.invstd) v = 1.0 / std::sqrt(v + opt.eps);
  return normalize_and_record(x, w, b, std::move(s));
}

}  // namespace advcl::ops
