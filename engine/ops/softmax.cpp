#include "engine/ops/softmax.h"

#include <limits>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/kernels/softmax.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax_cuda.h"
#include "engine/parallel.h"

namespace advcl::ops {

namespace {

// kind 0: softmax, 1: log_softmax. Both save their output for backward.
Tensor softmax_impl(const char* op, const Tensor& x, int kind) {
  check_dim(op, x, 2);
  int64_t rows = x.size(0), C = x.size(1);
  if (C == 0) fail(op, ": no classes in shape ", shape_str(x.shape()));
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  visit_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    if (on_cuda(op, x.device()))
      ADVCL_CUDA_ONLY(cuda_ops::softmax_rows(xp, yp, rows, C, kind));
    else
      parallel_for(rows, [&](int64_t r) {
        if (kind == 0)
          kernels::softmax_row(xp + r * C, yp + r * C, C);
        else
          kernels::log_softmax_row(xp + r * C, yp + r * C, C);
      }, 64);
  });
  if (needs_graph({x})) {
    record(y, op, {x}, [op, kind, rows, C, ys = y.detach()](const Tensor& g, const Needs&) {
      Tensor gx = Tensor::empty(ys.shape(), ys.dtype(), ys.device());
      visit_float(ys.dtype(), op, [&](auto tag) {
        using T = decltype(tag);
        const T *yp = ys.data<T>(), *gp = g.data<T>();
        T* out = gx.data<T>();
        if (on_cuda(op, ys.device()))
          ADVCL_CUDA_ONLY(cuda_ops::softmax_backward_rows(yp, gp, out, rows, C, kind));
        else
          parallel_for(rows, [&](int64_t r) {
            if (kind == 0)
              kernels::softmax_backward_row(yp + r * C, gp + r * C, out + r * C, C);
            else
              kernels::log_softmax_backward_row(yp + r * C, gp + r * C, out + r * C, C);
          }, 64);
      });
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x) { return softmax_impl("softmax", x, 0); }
Tensor log_softmax(const Tensor& x) { return softmax_impl("log_softmax", x, 1); }

namespace {

// Mean's 1 / (number of labels not ignored), as a 0-D tensor of `dtype` on
// the labels' device, computed there: counting on the host would make every
// loss wait for the GPU. With none counted every row's loss is 0, and so is
// the mean (PyTorch gives NaN). The value is (T)(1.0 / count) in double, as
// a host scale would be.
Tensor mean_scale(const Tensor& labels, int64_t ignore_index, DType dtype) {
  NoGradGuard no_grad;
  Tensor l = labels.to(DType::Float64);  // exact for any class index
  // |label - ignore_index| clamped to [0, 1]: 1 for a label counted, 0 for one ignored.
  Tensor counted = ops::sum(ops::clamp(ops::abs(ops::add(l, -static_cast<double>(ignore_index))), 0.0, 1.0));
  Tensor one = ops::add(ops::mul(counted, 0.0), 1.0);
  return ops::div(one, ops::clamp(counted, 1.0, std::numeric_limits<double>::infinity())).to(dtype);
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction, int64_t ignore_index) {
  const char* op = "cross_entropy";
  check_dim(op, logits, 2, "logits");
  check_dim(op, labels, 1, "label tensor");
  check_dtype(op, labels, DType::Int64);
  check_same_device(op, labels, logits, "labels");
  int64_t rows = logits.size(0), C = logits.size(1);
  if (labels.size(0) != rows)
    fail(op, ": logits ", shape_str(logits.shape()), " and labels ", shape_str(labels.shape()), " differ in batch size");
  // Labels are validated where they enter (the batch loader, the pseudo-label
  // files): reading them here would make every loss wait for the GPU. The CPU
  // path reads them anyway, so it checks them too.
  if (logits.device().is_cpu()) {
    const int64_t* lp = labels.data<int64_t>();
    for (int64_t r = 0; r < rows; ++r)
      if (lp[r] != ignore_index && (lp[r] < 0 || lp[r] >= C))
        fail(op, ": label ", lp[r], " out of range for ", C, " classes");
  }
  Tensor scale;  // Mean: 1 / labels counted, on the device; Sum: none
  if (reduction == Reduction::Mean) scale = mean_scale(labels, ignore_index, logits.dtype());
  Tensor per_row = Tensor::empty({rows}, logits.dtype(), logits.device());
  visit_float(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = logits.data<T>();
    const int64_t* lp = labels.data<int64_t>();
    T* out = per_row.data<T>();
    if (on_cuda(op, logits.device()))
      ADVCL_CUDA_ONLY(cuda_ops::cross_entropy_rows(xp, lp, out, rows, C, ignore_index));
    else
      parallel_for(rows, [&](int64_t r) {
        out[r] = static_cast<T>(kernels::cross_entropy_row(xp + r * C, C, lp[r], ignore_index));
      }, 64);
  });
  Tensor loss;
  {
    NoGradGuard no_grad;
    loss = ops::sum(per_row);
    if (scale.defined()) loss = ops::mul(loss, scale);
  }
  if (needs_graph({logits})) {
    record(loss, op, {logits, labels},
           [op, rows, C, scale, ignore_index, labels, xs = logits.detach()](const Tensor& g, const Needs&) {
             // softmax - onehot from the kernel, then times g * scale on the
             // device: reading g would make every backward wait for the GPU.
             // (In float64 this is bit for bit the kernel scaling by g * scale.)
             Tensor unit = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
             visit_float(xs.dtype(), op, [&](auto tag) {
               using T = decltype(tag);
               const T* xp = xs.data<T>();
               const int64_t* lp = labels.data<int64_t>();
               T* out = unit.data<T>();
               if (on_cuda(op, xs.device()))
                 ADVCL_CUDA_ONLY(cuda_ops::cross_entropy_backward_rows(xp, lp, out, rows, C, ignore_index, 1.0));
               else
                 parallel_for(rows, [&](int64_t r) {
                   kernels::cross_entropy_backward_row(xp + r * C, out + r * C, C, lp[r], ignore_index, 1.0);
                 }, 64);
             });
             Tensor factor = scale.defined() ? ops::mul(g, scale) : g;
             return std::vector<Tensor>{ops::mul(unit, factor), Tensor()};
           });
  }
  return loss;
}

Tensor kl_div(const Tensor& input, const Tensor& target, KLReduction reduction) {
  const char* op = "kl_div";
  check_same_kind(op, input, target);
  check_same_shape(op, input, target);
  int64_t n = input.numel();
  double scale = 1.0;
  if (reduction == KLReduction::Mean) scale = n ? 1.0 / static_cast<double>(n) : 0.0;
  if (reduction == KLReduction::BatchMean) {
    if (input.dim() < 1 || input.size(0) == 0) fail(op, ": batchmean needs a non-empty batch dimension");
    scale = 1.0 / static_cast<double>(input.size(0));
  }
  Tensor terms = Tensor::empty(input.shape(), input.dtype(), input.device());
  visit_float(input.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T *ip = input.data<T>(), *tp = target.data<T>();
    T* out = terms.data<T>();
    if (on_cuda(op, input.device()))
      ADVCL_CUDA_ONLY(cuda_ops::kl_terms(ip, tp, out, n));
    else
      parallel_for(n, [&](int64_t i) { out[i] = static_cast<T>(kernels::kl_elem(ip[i], tp[i])); });
  });
  Tensor loss;
  {
    NoGradGuard no_grad;
    loss = ops::sum(terms);
    if (scale != 1.0) loss = ops::mul(loss, scale);
  }
  if (needs_graph({input, target})) {
    record(loss, op, {input, target},
           [op, n, scale, is = input.detach(), ts = target.detach()](const Tensor& g, const Needs& needs) {
             // The derivatives from the kernel, then times g * scale on the
             // device (no read of g; in float64 bit for bit the same).
             std::vector<Tensor> r(2);
             if (needs[0]) r[0] = Tensor::empty(is.shape(), is.dtype(), is.device());
             if (needs[1]) r[1] = Tensor::empty(is.shape(), is.dtype(), is.device());
             visit_float(is.dtype(), op, [&](auto tag) {
               using T = decltype(tag);
               const T *ip = is.data<T>(), *tp = ts.data<T>();
               T* gi = needs[0] ? r[0].data<T>() : nullptr;
               T* gt = needs[1] ? r[1].data<T>() : nullptr;
               if (on_cuda(op, is.device()))
                 ADVCL_CUDA_ONLY(cuda_ops::kl_backward(ip, tp, gi, gt, n, 1.0));
               else
                 parallel_for(n, [&](int64_t i) {
                   if (gi) gi[i] = static_cast<T>(kernels::kl_d_input(ip[i], tp[i]));
                   if (gt) gt[i] = static_cast<T>(kernels::kl_d_target(ip[i], tp[i]));
                 });
             });
             Tensor factor = scale != 1.0 ? ops::mul(g, scale) : g;
             for (Tensor& t : r)
               if (t.defined()) t = ops::mul(t, factor);
             return r;
           });
  }
  return loss;
}

}  // namespace advcl::ops
