#include "engine/ops/batch_norm.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/elementwise.h"
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
  check_same_device("batch_norm", p, x, what);
}

// Per-channel values as float64 [C] on `dev` (a defined [C] tensor of any
// float dtype), or `fill`. They stay on the input's device: a GPU batch norm
// never waits for the host.
Tensor channel_doubles(const Tensor& t, int64_t C, double fill, Device dev) {
  if (!t.defined()) return ops::mul(Tensor::ones({C}, DType::Float64, dev), fill);
  return t.to(DType::Float64);
}

// Everything backward needs, kept by the node: float64 [C] on x's device.
struct Saved {
  Tensor x;
  Tensor mean, invstd, w;
  bool training;
  double count;
  ReduceSums reduce;
};

std::vector<Tensor> backward(const Saved& s, const Tensor& g, const Needs& needs, bool has_w, bool has_b) {
  BNShape sh = bn_shape(s.x);
  int64_t C = sh.C;
  Device dev = g.device();
  bool cuda = dev.is_cuda();
  Tensor sum_g = Tensor::empty({C}, DType::Float64, dev), sum_gx = Tensor::empty({C}, DType::Float64, dev);
  Tensor gx;
  visit_float(g.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T *gp = g.data<T>(), *xp = s.x.data<T>();
    const double* mean = s.mean.data<double>();
    double *sg = sum_g.data<double>(), *sgx = sum_gx.data<double>();
    if (cuda)
      ADVCL_CUDA_ONLY(cuda_ops::bn_backward_sums(gp, xp, sh, mean, sg, sgx));
    else
      parallel_for(C, [&](int64_t c) { kernels::bn_backward_sums(gp, xp, sh, c, mean[c], sg[c], sgx[c]); }, 2);
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
  if (needs[0]) {
    gx = Tensor::empty(s.x.shape(), s.x.dtype(), s.x.device());
    visit_float(g.dtype(), "batch_norm", [&](auto tag) {
      using T = decltype(tag);
      const T *gp = g.data<T>(), *xp = s.x.data<T>();
      const double *mean = s.mean.data<double>(), *invstd = s.invstd.data<double>(), *w = s.w.data<double>();
      const double *sg = sum_g.data<double>(), *sgx = sum_gx.data<double>();
      T* out = gx.data<T>();
      if (cuda) {
        ADVCL_CUDA_ONLY(cuda_ops::bn_backward_elem(gp, xp, sh, mean, invstd, w, sg, sgx, s.training, s.count, out));
      } else {
        // One (image, channel) plane per task: the channel is fixed inside it.
        parallel_for(sh.N * C, [&](int64_t plane) {
          int64_t c = plane % C;
          const T *g_p = gp + plane * sh.S, *x_p = xp + plane * sh.S;
          T* o = out + plane * sh.S;
          for (int64_t k = 0; k < sh.S; ++k)
            o[k] = s.training ? kernels::bn_backward_elem(g_p[k], x_p[k], mean[c], invstd[c], w[c], sg[c], sgx[c],
                                                          s.count)
                              : static_cast<T>(static_cast<double>(g_p[k]) * w[c] * invstd[c]);
        }, 16);
      }
    });
  }
  std::vector<Tensor> r(3);
  r[0] = gx;
  if (has_w && needs[1]) r[1] = ops::mul(local_gx, s.invstd).to(g.dtype());
  if (has_b && needs[2]) r[2] = local_g.to(g.dtype());
  return r;
}

Tensor normalize_and_record(const Tensor& x, const Tensor& w, const Tensor& b, Saved saved) {
  BNShape sh = bn_shape(x);
  Tensor bias = channel_doubles(b, sh.C, 0.0, x.device());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  visit_float(x.dtype(), "batch_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const double *mean = saved.mean.data<double>(), *invstd = saved.invstd.data<double>();
    const double *wp = saved.w.data<double>(), *bp = bias.data<double>();
    if (x.device().is_cuda()) {
      ADVCL_CUDA_ONLY(cuda_ops::bn_normalize(xp, sh, mean, invstd, wp, bp, yp));
    } else {
      parallel_for(sh.N * sh.C, [&](int64_t plane) {
        int64_t c = plane % sh.C;
        const T* x_p = xp + plane * sh.S;
        T* y_p = yp + plane * sh.S;
        for (int64_t k = 0; k < sh.S; ++k) y_p[k] = kernels::bn_normalize(x_p[k], mean[c], invstd[c], wp[c], bp[c]);
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

// The running statistics' element type (they are updated in place in it).
DType running_dtype(const Tensor& running_mean, const Tensor& running_var) {
  if (running_mean.defined() && running_var.defined() && running_mean.dtype() != running_var.dtype())
    fail("batch_norm: running_mean is ", dtype_name(running_mean.dtype()), " but running_var is ",
         dtype_name(running_var.dtype()));
  return running_mean.defined() ? running_mean.dtype() : running_var.defined() ? running_var.dtype() : DType::Float64;
}

template <class R>
R* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<R>() : nullptr;
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
  Device dev = x.device();
  Tensor sum = stats.sum.to(DType::Float64).to(dev), sum_sq = stats.sum_sq.to(DType::Float64).to(dev);
  Saved s{Tensor(), Tensor::empty({sh.C}, DType::Float64, dev), Tensor::empty({sh.C}, DType::Float64, dev),
          channel_doubles(w, sh.C, 1.0, dev), true, static_cast<double>(stats.count), reduce_backward_sums};
  // Mean, invstd and the running statistics' momentum update (with the
  // UNBIASED variance), in place, per channel.
  visit_float(running_dtype(running_mean, running_var), "batch_norm running statistics", [&](auto tag) {
    using R = decltype(tag);
    const double *sp = sum.data<double>(), *qp = sum_sq.data<double>();
    R *rm = data_or_null<R>(running_mean), *rv = data_or_null<R>(running_var);
    double *mean = s.mean.data<double>(), *invstd = s.invstd.data<double>();
    if (dev.is_cuda()) {
      ADVCL_CUDA_ONLY(
          cuda_ops::bn_train_channels(sp, qp, sh.C, s.count, opt.eps, opt.momentum, rm, rv, mean, invstd));
    } else {
      for (int64_t c = 0; c < sh.C; ++c)
        kernels::bn_train_channel(sp[c], qp[c], s.count, opt.eps, opt.momentum, rm ? rm + c : nullptr,
                                  rv ? rv + c : nullptr, mean[c], invstd[c]);
    }
  });
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
  Device dev = x.device();
  Saved s{Tensor(), Tensor::empty({sh.C}, DType::Float64, dev), Tensor::empty({sh.C}, DType::Float64, dev),
          channel_doubles(w, sh.C, 1.0, dev), false, static_cast<double>(sh.N * sh.S), nullptr};
  visit_float(running_dtype(running_mean, running_var), "batch_norm running statistics", [&](auto tag) {
    using R = decltype(tag);
    const R *rm = running_mean.data<R>(), *rv = running_var.data<R>();
    double *mean = s.mean.data<double>(), *invstd = s.invstd.data<double>();
    if (dev.is_cuda())
      ADVCL_CUDA_ONLY(cuda_ops::bn_eval_channels(rm, rv, sh.C, opt.eps, mean, invstd));
    else
      for (int64_t c = 0; c < sh.C; ++c) kernels::bn_eval_channel(rm[c], rv[c], opt.eps, mean[c], invstd[c]);
  });
  return normalize_and_record(x, w, b, std::move(s));
}

}  // namespace advcl::ops
