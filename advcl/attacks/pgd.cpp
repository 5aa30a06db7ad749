#include "advcl/attacks/pgd.h"

#include "engine/ops.h"

namespace advcl::method {

Tensor pgd_start(const Tensor& clean, const PgdOptions& opt, RngKey key) {
  NoGradGuard no_grad;
  switch (opt.start) {
    case PgdOptions::Start::Clean:
      return clean.clone();
    case PgdOptions::Start::Uniform:
      return ops::add(clean, ops::rand_uniform(clean.shape(), key, -opt.epsilon, opt.epsilon, clean.dtype(),
                                               clean.device()));
    case PgdOptions::Start::Normal:
      return ops::add(clean, ops::rand_normal(clean.shape(), key, 0.0, opt.normal_std, clean.dtype(), clean.device()));
  }
  fail("pgd: unknown start");
}

std::vector<Tensor> pgd_linf(const std::vector<Tensor>& clean, const AttackLoss& loss, const PgdOptions& opt,
                             const std::vector<RngKey>& start_keys) {
  if (clean.size() != start_keys.size())
    fail("pgd_linf: ", clean.size(), " inputs but ", start_keys.size(), " start keys");
  std::vector<Tensor> starts;
  for (size_t i = 0; i < clean.size(); ++i) starts.push_back(pgd_start(clean[i], opt, start_keys[i]));
  return pgd_linf_from(std::move(starts), clean, loss, opt);
}

std::vector<Tensor> pgd_linf_from(std::vector<Tensor> adv, const std::vector<Tensor>& clean, const AttackLoss& loss,
                                  const PgdOptions& opt) {
  if (clean.size() != adv.size()) fail("pgd_linf: ", clean.size(), " inputs but ", adv.size(), " starting points");
  if (opt.iterations < 0 || !(opt.epsilon >= 0) || !(opt.step >= 0))
    fail("pgd_linf: bad options (iterations ", opt.iterations, ", epsilon ", opt.epsilon, ", step ", opt.step, ")");
  std::vector<Tensor> lo, hi;
  {
    NoGradGuard no_grad;
    for (size_t i = 0; i < clean.size(); ++i) {
      check_same_shape("pgd_linf", clean[i], adv[i]);
      lo.push_back(ops::add(clean[i], -opt.epsilon));
      hi.push_back(ops::add(clean[i], opt.epsilon));
    }
  }
  for (int it = 0; it < opt.iterations; ++it) {
    for (Tensor& x : adv) x = x.detach().set_requires_grad(true);
    Tensor l = loss(adv);
    std::vector<Tensor> g = grad(l, adv);
    NoGradGuard no_grad;
    for (size_t i = 0; i < adv.size(); ++i) {
      Tensor x = ops::add(adv[i].detach(), ops::mul(ops::sign(g[i]), opt.step));
      x = ops::minimum(ops::maximum(x, lo[i]), hi[i]);
      adv[i] = ops::clamp(x, 0.0, 1.0);
    }
  }
  for (Tensor& x : adv) x = x.detach();
  return adv;
}

}  // namespace advcl::method
