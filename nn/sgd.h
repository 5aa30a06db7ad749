// Stochastic gradient descent with momentum and weight decay, exactly as
// torch.optim.SGD with dampening 0 and nesterov off:
//   d   = grad + weight_decay * p          (decay added to the gradient)
//   buf = d                                (the first step of a parameter)
//   buf = momentum * buf + d               (later steps)
//   p   = p - lr * buf                     (p - lr * d when momentum is 0)
// Parameters without a gradient (no loss reached them since zero_grad) are
// skipped entirely, as PyTorch skips p.grad None: no decay, no momentum.
#pragma once
#include <map>
#include <string>

#include "nn/module.h"

namespace advcl::nn {

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 0.0;
};

class Sgd {
 public:
  // `params`: the parameters to train, by name (e.g. model.named_parameters()).
  Sgd(StateDict params, SgdOptions options);

  void step();
  // Drops the gradients of the trained parameters.
  void zero_grad();

  double lr() const { return options_.lr; }
  void set_lr(double lr) { options_.lr = lr; }
  const SgdOptions& options() const { return options_; }
  const StateDict& params() const { return params_; }

  // Momentum buffers by parameter name; a parameter has none before its first step.
  const std::map<std::string, Tensor>& momentum_buffers() const { return momentum_; }
  // Replaces the buffers (checkpoint resume). Each name must be a trained
  // parameter and each shape its shape; the message names the offender.
  void set_momentum_buffers(const std::map<std::string, Tensor>& buffers);

 private:
  StateDict params_;
  SgdOptions options_;
  std::map<std::string, Tensor> momentum_;
};

}  // namespace advcl::nn
