#include "advcl/pretrain/simclr_step.h"

#include "advcl/pretrain/losses.h"
#include "engine/ops.h"

namespace advcl::method {

Tensor simclr_step(ContrastiveModel& model, nn::Sgd& sgd, const Tensor& x1, const Tensor& x2,
                   const SimclrStepOptions& opt, StepContext& ctx) {
  check_same_shape("simclr_step", x1, x2);
  model.train();
  sgd.zero_grad();
  int64_t B = x1.size(0);
  Tensor f = model.features(ops::cat({x1, x2}), nn::BnSets::repeat(0, 2));
  Tensor p = model.project(f, 2);
  Tensor loss = supcon_loss({ctx.gather(ops::slice(p, 0, B)), ctx.gather(ops::slice(p, B, 2 * B))},
                            opt.temperature, opt.temperature);
  ctx.backward(loss);
  sgd.step();
  return loss.detach();
}

}  // namespace advcl::method
