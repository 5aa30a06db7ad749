#include "advcl/advcl_step.h"

#include "advcl/losses.h"
#include "engine/ops.h"

namespace advcl::method {

std::vector<Tensor> advcl_attack_starts(const Tensor& x_org, const AdvclStepOptions& opt, RngKey key) {
  PgdOptions p;
  p.epsilon = opt.epsilon;
  RngKey ce_key = key;
  key.purpose = static_cast<uint32_t>(RngPurpose::AttackStart);
  ce_key.purpose = static_cast<uint32_t>(RngPurpose::AttackStart) + 1000;  // the x_ce attack's own stream
  return {pgd_start(x_org, p, key), pgd_start(x_org, p, ce_key)};
}

AdvclStepResult advcl_step(nn::ResNet18& model, nn::Sgd& sgd, const AdvclBatch& b, const std::vector<Tensor>& starts,
                           const AdvclStepOptions& opt) {
  if (b.pseudo.empty()) fail("advcl_step: no pseudo-labels given");
  model.train();
  auto gather = [&](const Tensor& p) { return opt.gather ? opt.gather(p) : p; };
  double ce_weight = opt.ce_weight * opt.ce_scale;
  AdvclStepResult r;
  {
    NoGradGuard no_grad;
    r.x_hfc = ops::fft_highpass(b.x_org, opt.radius);
  }
  // The clean views' projections, once (no gradient: the attack needs input gradients only).
  std::vector<Tensor> clean_proj(3);
  {
    NoGradGuard no_grad;
    Tensor f = model.features(ops::cat({b.x1, b.x2, r.x_hfc}), nn::BnSets::repeat(nn::kBnNormal, 3));
    Tensor p = model.project(f, 3);
    int64_t B = b.x1.size(0);
    for (int v = 0; v < 3; ++v) clean_proj[v] = gather(ops::slice(p, v * B, (v + 1) * B));
  }
  auto attack_loss = [&](const std::vector<Tensor>& adv) {
    Tensor p_cl = model.project(model.features(adv[0], nn::kBnPgd), 1);
    Tensor con = supcon_loss({gather(p_cl), clean_proj[0], clean_proj[1], clean_proj[2]}, opt.temperature,
                             opt.base_temperature);
    Tensor ce = pseudo_label_ce(model.pseudo_logits(model.features(adv[1], nn::kBnPgdCe)), b.pseudo);
    return ops::add(con, ops::mul(ce, ce_weight));
  };
  PgdOptions p;
  p.epsilon = opt.epsilon;
  p.step = opt.step_size;
  p.iterations = opt.iterations;
  std::vector<Tensor> adv = pgd_linf_from(starts, {b.x_org, b.x_org}, attack_loss, p);
  r.x_cl = adv[0];
  r.x_ce = adv[1];

  // The training forward: all views with gradients, per-view BN sets.
  sgd.zero_grad();
  Tensor f = model.features(ops::cat({r.x_cl, b.x1, b.x2, r.x_hfc}),
                            {nn::kBnPgd, nn::kBnNormal, nn::kBnNormal, nn::kBnNormal});
  Tensor proj = model.project(f, 4);
  int64_t B = b.x1.size(0);
  std::vector<Tensor> views;
  for (int v = 0; v < 4; ++v) views.push_back(gather(ops::slice(proj, v * B, (v + 1) * B)));
  Tensor con = supcon_loss(views, opt.temperature, opt.base_temperature);
  Tensor ce = pseudo_label_ce(model.pseudo_logits(model.features(r.x_ce, nn::kBnPgdCe)), b.pseudo);
  Tensor loss = ops::add(con, ops::mul(ce, ce_weight));
  if (opt.backward)
    opt.backward(loss);
  else
    backward(loss);
  sgd.step();
  r.loss = loss.detach();
  r.contrastive = con.detach();
  r.ce = ce.detach();
  return r;
}

}  // namespace advcl::method
