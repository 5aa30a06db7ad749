// L-inf projected gradient descent (ascent on a loss), for any number of
// inputs attacked together through one loss (AdvCL attacks x_cl and x_ce
// jointly). Only input gradients are computed: the attack calls
// advcl::grad(loss, {x_adv...}), which skips every weight gradient.
#pragma once
#include <functional>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace advcl::method {

struct PgdOptions {
  double epsilon = 8.0 / 255;
  double step = 2.0 / 255;
  int iterations = 10;
  // How the attack starts: at the clean input, x + U(-eps, eps) (not clamped
  // before the first forward, as the reference), or TRADES' x + 0.001 N(0, 1).
  enum class Start { Clean, Uniform, Normal } start = Start::Uniform;
  double normal_std = 0.001;
};

// loss(advs) must return a one-element tensor whose graph reaches every adv.
using AttackLoss = std::function<Tensor(const std::vector<Tensor>& advs)>;

// Each step: x <- clip_[0,1]( clip_[x0 - eps, x0 + eps]( x + step * sign(grad_x loss) ) ).
// start_keys[i] keys the random start of input i (sample = index of the
// batch's first image, so an image's noise does not depend on its batch).
// `on_iterate` (optional) is called after each loss evaluation, e.g. to count
// forward passes.
std::vector<Tensor> pgd_linf(const std::vector<Tensor>& clean, const AttackLoss& loss, const PgdOptions& opt,
                             const std::vector<RngKey>& start_keys);

// The same attack from given starting points (tests feed fixed starts).
std::vector<Tensor> pgd_linf_from(std::vector<Tensor> starts, const std::vector<Tensor>& clean, const AttackLoss& loss,
                                  const PgdOptions& opt);

// The random start alone (exposed for tests and for callers that need it).
Tensor pgd_start(const Tensor& clean, const PgdOptions& opt, RngKey key);

}  // namespace advcl::method
