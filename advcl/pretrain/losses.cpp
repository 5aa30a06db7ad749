#include "advcl/pretrain/losses.h"

#include "engine/autocast.h"
#include "engine/ops.h"

namespace advcl::method {

namespace {

// The n x n identity on `device`, made there without a host copy: flattened,
// it is the period [1, 0 x n] repeated, cut to n * n values.
Tensor identity(int64_t n, DType dtype, Device device) {
  Tensor flat = ops::cat({Tensor::ones({1}, dtype, device), Tensor::zeros({n}, dtype, device)});
  while (flat.numel() < n * n) flat = ops::cat({flat, flat});
  return ops::reshape(ops::slice(flat, 0, n * n), {n, n});
}

}  // namespace

Tensor supcon_loss(const std::vector<Tensor>& views, double temperature, double base_temperature) {
  if (views.size() < 2) fail("supcon_loss: needs at least 2 views, got ", views.size());
  if (!(temperature > 0) || !(base_temperature > 0))
    fail("supcon_loss: temperatures must be positive, got ", temperature, " and ", base_temperature);
  const Tensor& first = views[0];
  check_dim("supcon_loss", first, 2, "feature matrix [B, D]");
  for (const Tensor& v : views) check_same_shape("supcon_loss", first, v);
  int64_t V = static_cast<int64_t>(views.size()), B = first.size(0), N = V * B;
  // The loss computes in float32 under autocast too (engine/autocast.h): its
  // similarity matrix is a matmul, but of unit vectors whose logits, divided
  // by a temperature of 0.5 or less, feed exp().
  autocast::AutocastGuard float32(false);

  // Constant masks, made on the features' device (built on the host, they
  // were an upload that made every call wait for the GPU): the diagonal is
  // pushed to -1e9 so that exp() of it is exactly 0 (an anchor is not in its
  // own denominator) while staying finite (a -inf would turn 0 * -inf into
  // NaN below); the positive mask marks the other views of the same image.
  Tensor self, positive;
  {
    NoGradGuard no_grad;
    Tensor eye = identity(N, first.dtype(), first.device());
    self = ops::mul(eye, -1e9);
    // rows a and p show the same image when a = p (mod B): E E^T with E the
    // V identities of size B stacked (sums of 0s and 1s, exact).
    Tensor stacked = ops::cat(std::vector<Tensor>(static_cast<size_t>(V), identity(B, first.dtype(), first.device())));
    positive = ops::sub(ops::matmul(stacked, stacked, false, true), eye);
  }
  Tensor f = ops::cat(views);
  Tensor logits = ops::add(ops::div(ops::matmul(f, f, false, true), temperature), self);
  Tensor log_prob = ops::log_softmax(logits);
  Tensor pos_sum = ops::sum(ops::mul(log_prob, positive));
  // every anchor has V - 1 positives: the mean over positives, then over anchors
  double scale = -(temperature / base_temperature) / static_cast<double>((V - 1) * N);
  return ops::mul(pos_sum, scale);
}

Tensor pseudo_label_ce(const std::vector<Tensor>& logits, const std::vector<Tensor>& labels) {
  if (logits.empty() || logits.size() != labels.size())
    fail("pseudo_label_ce: ", logits.size(), " heads but ", labels.size(), " label sets");
  Tensor total;
  for (size_t k = 0; k < logits.size(); ++k) {
    Tensor ce = ops::cross_entropy(logits[k], labels[k], ops::Reduction::Mean, -1);
    total = total.defined() ? ops::add(total, ce) : ce;
  }
  return ops::div(total, static_cast<double>(logits.size()));
}

}  // namespace advcl::method
