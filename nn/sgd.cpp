#include "nn/sgd.h"

#include <set>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"

namespace advcl::nn {

Sgd::Sgd(StateDict params, SgdOptions options) : params_(std::move(params)), options_(options) {
  if (options.lr < 0) fail("Sgd: lr must be >= 0, got ", options.lr);
  if (options.momentum < 0) fail("Sgd: momentum must be >= 0, got ", options.momentum);
  if (options.weight_decay < 0) fail("Sgd: weight_decay must be >= 0, got ", options.weight_decay);
  std::set<std::string> seen;
  for (const NamedTensor& p : params_) {
    if (!seen.insert(p.name).second) fail("Sgd: parameter '", p.name, "' is listed twice");
    if (!is_floating(p.tensor.dtype())) fail("Sgd: parameter '", p.name, "' is not a floating tensor");
  }
}

void Sgd::step() {
  NoGradGuard no_grad;
  for (const NamedTensor& p : params_) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    Tensor w = p.tensor.detach();
    Tensor d = options_.weight_decay != 0 ? ops::add(g, ops::mul(w, options_.weight_decay)) : g;
    if (options_.momentum != 0) {
      auto it = momentum_.find(p.name);
      if (it == momentum_.end()) {
        it = momentum_.emplace(p.name, d.clone()).first;
      } else {
        it->second.copy_(ops::add(ops::mul(it->second, options_.momentum), d));
      }
      d = it->second;
    }
    // copy_ writes into the parameter's own storage: every handle (the
    // module's members, the state dict) sees the new values.
    w.copy_(ops::sub(w, ops::mul(d, options_.lr)));
  }
}

void Sgd::zero_grad() {
  for (NamedTensor& p : params_) p.tensor.set_grad(Tensor());
}

void Sgd::set_momentum_buffers(const std::map<std::string, Tensor>& buffers) {
  std::map<std::string, const Tensor*> by_name;
  for (const NamedTensor& p : params_) by_name[p.name] = &p.tensor;
  std::map<std::string, Tensor> next;
  for (const auto& [name, buf] : buffers) {
    auto it = by_name.find(name);
    if (it == by_name.end()) fail("Sgd: momentum buffer for '", name, "', which is not a trained parameter");
    const Tensor& p = *it->second;
    if (buf.shape() != p.shape())
      fail("Sgd: momentum buffer for '", name, "' has shape ", shape_str(buf.shape()), ", the parameter ",
           shape_str(p.shape()));
    next[name] = buf.to(p.dtype()).to(p.device()).clone();
  }
  momentum_ = std::move(next);
}

}  // namespace advcl::nn
