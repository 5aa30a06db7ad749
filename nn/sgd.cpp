#include "nn/sgd.h"

#include <set>

#include "engine/autograd.h"
#include "engine/ops/sgd_update.h"

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

// One multi-tensor update over every parameter with a gradient
// (ops::sgd_update). A parameter's first step allocates its momentum buffer;
// later steps allocate nothing.
void Sgd::step() {
  NoGradGuard no_grad;
  std::vector<ops::SgdEntry> entries;
  std::vector<std::pair<const std::string*, Tensor>> new_buffers;  // kept only if the update runs
  entries.reserve(params_.size());
  for (const NamedTensor& p : params_) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    ops::SgdEntry e{p.tensor, g, Tensor(), false};
    if (options_.momentum != 0) {
      auto it = momentum_.find(p.name);
      if (it != momentum_.end()) {
        e.buf = it->second;
      } else {
        e.buf = Tensor::empty(p.tensor.shape(), p.tensor.dtype(), p.tensor.device());
        e.first = true;
        new_buffers.emplace_back(&p.name, e.buf);
      }
    }
    entries.push_back(std::move(e));
  }
  // In place: every handle of a parameter (the module's members, the state dict) sees the new values.
  ops::sgd_update(entries, {options_.lr, options_.momentum, options_.weight_decay});
  for (auto& [name, buf] : new_buffers) momentum_.emplace(*name, std::move(buf));
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
