#include "engine/ops/softmax.h"

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
    if (x.device().is_cuda())
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
        if (ys.device().is_cuda())
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

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction, int64_t ignore_index) {
  const char* op = "cross_entropy";
  check_dim(op, logits, 2, "logits");
  check_dim(op, labels, 1, "label tensor");
  check_dtype(op, labels, DType::Int64);
  check_same_device(op, labels, logits, "labels");
  int64_t rows = logits.size(0), C = logits.size(1);
  if (labels.size(0) != rows)
    fail(op, ": logits ", shape_str(logits.shape()), " and labels ", shape_str(labels.shape()), " differ in batch size");
  // Labels are checked on the host: an out-of-range label must be an error, not a wild read.
  std::vector<int64_t> host = labels.to_vector<int64_t>();
  int64_t counted = 0;
  for (int64_t l : host) {
    if (l == ignore_index) continue;
    if (l < 0 || l >= C) fail(op, ": label ", l, " out of range for ", C, " classes");
    ++counted;
  }
  // Mean over the labels not ignored; with none counted the loss is 0 (PyTorch gives NaN).
  double scale = reduction == Reduction::Mean ? (counted ? 1.0 / static_cast<double>(counted) : 0.0) : 1.0;
  Tensor per_row = Tensor::empty({rows}, logits.dtype(), logits.device());
  visit_float(logits.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* xp = logits.data<T>();
    T* lp = per_row.data<T>();
    if (logits.device().is_cuda())
      ADVCL_CUDA_ONLY(cuda_ops::cross_entropy_rows(xp, labels.data<int64_t>(), lp, rows, C, ignore_index));
    else
      parallel_for(rows, [&](int64_t r) {
        lp[r] = static_cast<T>(kernels::cross_entropy_row(xp + r * C, C, host[r], ignore_index));
      }, 64);
  });
  Tensor loss;
  {
    NoGradGuard no_grad;
    loss = ops::sum(per_row);
    if (reduction == Reduction::Mean) loss = ops::mul(loss, scale);
  }
  if (needs_graph({logits})) {
    record(loss, op, {logits, labels},
           [op, rows, C, scale, ignore_index, host, labels, xs = logits.detach()](const Tensor& g, const Needs&) {
             double gs = g.item() * scale;
             Tensor gx = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
             visit_float(xs.dtype(), op, [&](auto tag) {
               using T = decltype(tag);
               const T* xp = xs.data<T>();
               T* out = gx.data<T>();
               if (xs.device().is_cuda())
                 ADVCL_CUDA_ONLY(cuda_ops::cross_entropy_backward_rows(xp, labels.data<int64_t>(), out, rows, C,
                                                                       ignore_index, gs));
               else
                 parallel_for(rows, [&](int64_t r) {
                   kernels::cross_entropy_backward_row(xp + r * C, out + r * C, C, host[r], ignore_index, gs);
                 }, 64);
             });
             return std::vector<Tensor>{gx, Tensor()};
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
    if (input.device().is_cuda())
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
             double gs = g.item() * scale;
             std::vector<Tensor> r(2);
             if (needs[0]) r[0] = Tensor::empty(is.shape(), is.dtype(), is.device());
             if (needs[1]) r[1] = Tensor::empty(is.shape(), is.dtype(), is.device());
             visit_float(is.dtype(), op, [&](auto tag) {
               using T = decltype(tag);
               const T *ip = is.data<T>(), *tp = ts.data<T>();
               T* gi = needs[0] ? r[0].data<T>() : nullptr;
               T* gt = needs[1] ? r[1].data<T>() : nullptr;
               if (is.device().is_cuda())
                 ADVCL_CUDA_ONLY(cuda_ops::kl_backward(ip, tp, gi, gt, n, gs));
               else
                 parallel_for(n, [&](int64_t i) {
                   if (gi) gi[i] = static_cast<T>(kernels::kl_d_input(ip[i], tp[i]) * gs);
                   if (gt) gt[i] = static_cast<T>(kernels::kl_d_target(ip[i], tp[i]) * gs);
                 });
             });
             return r;
           });
  }
  return loss;
}

}  // namespace advcl::ops
