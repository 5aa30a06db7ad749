#include "advcl/pretrain/acl_step.h"

#include "advcl/pretrain/advcl_views.h"
#include "advcl/pretrain/losses.h"
#include "engine/ops.h"

namespace advcl::method {

StepValues acl_step_values(const AclStepResult& r) {
  return StepValues{{"loss", r.loss}, {"clean", r.clean}, {"adv", r.adv}};
}

std::vector<Tensor> acl_attack_starts(const AclBatch& b, const AclStepOptions& opt, RngKey key) {
  PgdOptions p;
  p.epsilon = opt.epsilon;
  RngKey key2 = key;
  key.purpose = static_cast<uint32_t>(RngPurpose::AttackStart);
  key2.purpose = static_cast<uint32_t>(RngPurpose::SecondAttackStart);  // the second view's own stream
  return {pgd_start(b.x1, p, key), pgd_start(b.x2, p, key2)};
}

AclStepResult acl_step(ContrastiveModel& model, nn::Sgd& sgd, const AclBatch& b, const std::vector<Tensor>& starts,
                       const AclStepOptions& opt, StepContext& ctx) {
  check_same_shape("acl_step", b.x1, b.x2);
  if (starts.size() != 2) fail("acl_step: ", starts.size(), " attack starts given, 2 needed (one per view)");
  int64_t B = b.x1.size(0);
  // NT-Xent of one stream whose projections are [x1 rows; x2 rows].
  auto nt_xent = [&](const Tensor& proj, int64_t at) {
    return supcon_loss({ctx.gather(ops::slice(proj, at, at + B)), ctx.gather(ops::slice(proj, at + B, at + 2 * B))},
                       opt.temperature, opt.temperature);
  };

  // The attack: both views perturbed together through one NT-Xent, one BN view of 2B images.
  model.train(!opt.attack_in_eval_mode);
  auto attack_loss = [&](const std::vector<Tensor>& adv) {
    Tensor f = model.features(ops::cat({adv[0], adv[1]}), opt.attack_bn_set);
    return nt_xent(model.project(f, 1), 0);
  };
  PgdOptions p;
  p.epsilon = opt.epsilon;
  p.step = opt.step_size;
  p.iterations = opt.iterations;
  std::vector<Tensor> adv = pgd_linf_from(starts, {b.x1, b.x2}, attack_loss, p);

  // The training forward: the adversarial stream (set `pgd`), then the clean
  // one (set `normal`), each one BN view of 2B images, in one call.
  model.train();
  sgd.zero_grad();
  Tensor f = model.features(ops::cat({adv[0], adv[1], b.x1, b.x2}), {kAclPgd, kAclNormal});
  Tensor proj = model.project(f, 2);
  Tensor adv_loss = nt_xent(proj, 0);
  Tensor clean_loss = nt_xent(proj, 2 * B);
  Tensor loss = ops::mul(ops::add(ops::mul(clean_loss, 2 - opt.adv_weight), ops::mul(adv_loss, opt.adv_weight)), 0.5);
  ctx.backward(loss);
  sgd.step();

  AclStepResult r;
  r.loss = loss.detach();
  r.clean = clean_loss.detach();
  r.adv = adv_loss.detach();
  r.x1_adv = adv[0];
  r.x2_adv = adv[1];
  return r;
}

PretrainMethod acl_method() {
  PretrainMethod m;
  m.name = "acl";
  m.summary = "ACL (dual stream): clean and adversarial SimCLR pairs, each with its own BN set";
  m.bn_sets = kAclBnSetNames;
  m.pseudo_labels = [](const PretrainSettings&) { return false; };
  m.views = [](const views::SimclrOptions& o) {
    views::SimclrOptions acl = o;
    acl.crop.scale_min = 0.1;  // the authors' RandomResizedCrop(scale=(1 - 0.9 * strength, 1)), strength 1
    return views::make_simclr_views(acl);
  };
  m.step = [](ContrastiveModel& model, nn::Sgd& sgd, const PretrainBatch& b, const PretrainSettings& s,
              StepContext& ctx) {
    AclStepOptions opt;
    opt.epsilon = s.epsilon;
    opt.step_size = s.step_size;
    opt.iterations = s.iterations;
    opt.temperature = s.temperature;
    AclBatch ab{b.views.at(views::kViewX1), b.views.at(views::kViewX2)};
    return acl_step_values(acl_step(model, sgd, ab, acl_attack_starts(ab, opt, b.noise), opt, ctx));
  };
  return m;
}

}  // namespace advcl::method
