#include "advcl/simclr_step.h"

#include "advcl/losses.h"
#include "engine/ops.h"

namespace advcl::method {

Tensor simclr_step(nn::ResNet18& model, nn::Sgd& sgd, const Tensor& x1, const Tensor& x2,
                   const SimclrStepOptions& opt) {
  check_same_shape("simclr_step", x1, x2);
  model.train();
  sgd.zero_grad();
  int64_t B = x1.size(0);
  Tensor f = model.features(ops::cat({x1, x2}), nn::BnSets::repeat(0, 2));
  Tensor p = model.project(f, 2);
  auto global = [&](const Tensor& t) { return opt.gather ? opt.gather(t) : t; };
  Tensor loss = supcon_loss({global(ops::slice(p, 0, B)), global(ops::slice(p, B, 2 * B))}, opt.temperature,
                            opt.temperature);
  if (opt.backward)
    opt.backward(loss);
  else
    backward(loss);
  sgd.step();
  return loss.detach();
}

}  // namespace advcl::method
