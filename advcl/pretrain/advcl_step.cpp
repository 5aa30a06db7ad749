#include "advcl/pretrain/advcl_step.h"

#include "advcl/pretrain/advcl_views.h"
#include "advcl/pretrain/losses.h"
#include "advcl/pretrain/methods.h"
#include "engine/ops.h"

namespace advcl::method {

std::vector<Tensor> advcl_attack_starts(const Tensor& x_org, const AdvclStepOptions& opt, RngKey key) {
  PgdOptions p;
  p.epsilon = opt.epsilon;
  RngKey ce_key = key;
  key.purpose = static_cast<uint32_t>(RngPurpose::AttackStart);
  ce_key.purpose = static_cast<uint32_t>(RngPurpose::SecondAttackStart);  // the x_ce attack's own stream
  return {pgd_start(x_org, p, key), pgd_start(x_org, p, ce_key)};
}

AdvclStepResult advcl_step(ContrastiveModel& model, nn::Sgd& sgd, const AdvclBatch& b,
                           const std::vector<Tensor>& starts, const AdvclStepOptions& opt, StepContext& ctx) {
  const bool with_ce = opt.pseudo_labels;
  if (with_ce && b.pseudo.empty()) fail("advcl_step: no pseudo-labels given");
  model.train();
  const int64_t B = b.x1.size(0);
  const double ce_weight = opt.ce_weight * ctx.local_scale(B);
  AdvclStepResult r;
  // The clean views: x1, x2 and (unless ablated) the high-frequency view.
  std::vector<Tensor> clean{b.x1, b.x2};
  if (opt.high_frequency_view) {
    NoGradGuard no_grad;
    r.x_hfc = ops::fft_highpass(b.x_org, opt.radius);
    clean.push_back(r.x_hfc);
  }
  const int64_t n_clean = static_cast<int64_t>(clean.size());
  // The clean views' projections, once (no gradient: the attack needs input gradients only).
  std::vector<Tensor> clean_proj(clean.size());
  {
    NoGradGuard no_grad;
    Tensor f = model.features(ops::cat(clean), nn::BnSets::repeat(kAdvclNormal, static_cast<int>(n_clean)));
    Tensor p = model.project(f, n_clean);
    for (int64_t v = 0; v < n_clean; ++v) clean_proj[v] = ctx.gather(ops::slice(p, v * B, (v + 1) * B));
  }
  auto contrastive = [&](const Tensor& p_cl, const std::vector<Tensor>& others) {
    std::vector<Tensor> views{p_cl};
    views.insert(views.end(), others.begin(), others.end());
    return supcon_loss(views, opt.temperature, opt.base_temperature);
  };
  auto pseudo_ce = [&](const Tensor& x_ce) {
    return pseudo_label_ce(model.pseudo_logits(model.features(x_ce, kAdvclPgdCe)), b.pseudo);
  };
  auto attack_loss = [&](const std::vector<Tensor>& adv) {
    Tensor con = contrastive(ctx.gather(model.project(model.features(adv[0], kAdvclPgd), 1)), clean_proj);
    if (!with_ce) return con;
    return ops::add(con, ops::mul(pseudo_ce(adv[1]), ce_weight));
  };
  PgdOptions p;
  p.epsilon = opt.epsilon;
  p.step = opt.step_size;
  p.iterations = opt.iterations;
  // x_cl (and x_ce for the pseudo-label term) attacked together.
  std::vector<Tensor> adv = with_ce ? pgd_linf_from(starts, {b.x_org, b.x_org}, attack_loss, p)
                                    : pgd_linf_from({starts.at(0)}, {b.x_org}, attack_loss, p);
  r.x_cl = adv[0];
  if (with_ce) r.x_ce = adv[1];

  // The training forward: all views with gradients, per-view BN sets.
  sgd.zero_grad();
  std::vector<Tensor> train_views{r.x_cl};
  train_views.insert(train_views.end(), clean.begin(), clean.end());
  std::vector<int> sets{kAdvclPgd};
  sets.resize(train_views.size(), kAdvclNormal);
  Tensor f = model.features(ops::cat(train_views), nn::BnSets(sets));
  Tensor proj = model.project(f, n_clean + 1);
  std::vector<Tensor> views;
  for (int64_t v = 0; v <= n_clean; ++v) views.push_back(ctx.gather(ops::slice(proj, v * B, (v + 1) * B)));
  Tensor con = supcon_loss(views, opt.temperature, opt.base_temperature);
  Tensor loss = con;
  Tensor ce;
  if (with_ce) {
    ce = pseudo_ce(r.x_ce);
    loss = ops::add(con, ops::mul(ce, ce_weight));
  }
  ctx.backward(loss);
  sgd.step();
  r.loss = loss.detach();
  r.contrastive = con.detach();
  if (with_ce) r.ce = ce.detach();
  if (ctx.distributed() && with_ce) {
    // SupCon already ran over the gathered batch; the CE is a mean over this
    // rank's images: log the whole batch's, and the loss made from it.
    r.ce = ctx.global_means({{"ce", r.ce}}, B).at("ce");
    r.loss = ops::add(r.contrastive.to(DType::Float64), ops::mul(r.ce, opt.ce_weight));
  }
  return r;
}

}  // namespace advcl::method

namespace advcl::method {

PretrainMethod advcl_method() {
  PretrainMethod m;
  m.name = "advcl";
  m.summary = "AdvCL: adversarial contrastive learning with a high-frequency view and pseudo-label heads";
  m.bn_sets = kAdvclBnSetNames;
  m.pseudo_labels = [](const PretrainSettings& s) { return s.use_pseudo_labels; };
  m.views = [](const views::SimclrOptions& o) { return views::make_advcl_views(o); };
  m.step = [](ContrastiveModel& model, nn::Sgd& sgd, const PretrainBatch& b, const PretrainSettings& s,
              StepContext& ctx) {
    AdvclStepOptions opt;
    opt.epsilon = s.epsilon;
    opt.step_size = s.step_size;
    opt.iterations = s.iterations;
    opt.radius = s.radius;
    opt.temperature = s.temperature;
    opt.ce_weight = s.ce_weight;
    opt.high_frequency_view = s.high_frequency_view;
    opt.pseudo_labels = s.use_pseudo_labels;
    AdvclBatch ab{b.views.at(views::kViewX1), b.views.at(views::kViewX2), b.views.at(views::kViewOrg), b.pseudo};
    AdvclStepResult r = advcl_step(model, sgd, ab, advcl_attack_starts(ab.x_org, opt, b.noise), opt, ctx);
    StepValues values{{"loss", r.loss}, {"contrastive", r.contrastive}};
    if (opt.pseudo_labels) values["ce"] = r.ce;
    return values;
  };
  return m;
}

}  // namespace advcl::method
