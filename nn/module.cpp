#include "nn/module.h"

#include <cmath>
#include <map>

#include "engine/autograd.h"
#include "engine/ops/random.h"

namespace advcl::nn {

std::string join_name(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  if (name.empty()) return prefix;
  return prefix + "." + name;
}

// fn(full_name, entry, kind) for every tensor, in state-dict order.
template <class Fn>
void Module::visit(const std::string& prefix, Fn&& fn) const {
  for (const Entry& e : params_) fn(join_name(prefix, e.name), e, TensorKind::Parameter);
  for (const Entry& e : buffers_) fn(join_name(prefix, e.name), e, TensorKind::Buffer);
  for (const auto& [name, child] : children_) child->visit(join_name(prefix, name), fn);
}

StateDict Module::state_dict() const {
  StateDict out;
  visit("", [&](const std::string& name, const Entry& e, TensorKind kind) { out.push_back({name, e.tensor, kind}); });
  return out;
}

StateDict Module::named_parameters() const {
  StateDict out;
  visit("", [&](const std::string& name, const Entry& e, TensorKind kind) {
    if (kind == TensorKind::Parameter) out.push_back({name, e.tensor, kind});
  });
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (const NamedTensor& p : named_parameters()) out.push_back(p.tensor);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::zero_grad() {
  for (NamedTensor& p : named_parameters()) p.tensor.set_grad(Tensor());
}

namespace {
// Points `t`'s TensorImpl at `src`'s data, so every handle of `t` sees it.
void rebind(const Tensor& t, const Tensor& src) {
  t.get()->storage = src.get()->storage;
  t.get()->offset = src.get()->offset;
  t.get()->dtype = src.dtype();
  t.get()->grad.reset();
}
}  // namespace

void Module::to(Device device) {
  visit("", [&](const std::string&, const Entry& e, TensorKind) {
    if (!e.host && e.tensor.device() != device) rebind(e.tensor, e.tensor.to(device));
  });
}

void Module::to(DType dtype) {
  visit("", [&](const std::string&, const Entry& e, TensorKind) {
    if (is_floating(e.tensor.dtype()) && e.tensor.dtype() != dtype) rebind(e.tensor, e.tensor.to(dtype));
  });
}

namespace {
uint32_t fnv1a32(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}
}  // namespace

void Module::init_parameters(uint64_t seed, const std::string& prefix) {
  NoGradGuard no_grad;
  std::map<uint32_t, std::string> streams;  // a hash collision would give two parameters the same numbers
  visit(prefix, [&](const std::string& name, const Entry& e, TensorKind kind) {
    if (kind != TensorKind::Parameter || e.init.kind == InitKind::None) return;
    RngKey key{seed, static_cast<uint32_t>(RngPurpose::Init), fnv1a32(name), 0};
    auto [it, fresh] = streams.emplace(key.step, name);
    if (!fresh) fail("init_parameters: parameters '", it->second, "' and '", name, "' hash to the same random stream");
    Tensor t = e.tensor;
    Tensor v;
    switch (e.init.kind) {
      case InitKind::KaimingNormalFanOut:
        v = ops::rand_normal(t.shape(), key, 0.0, std::sqrt(2.0 / static_cast<double>(e.init.fan)), t.dtype(),
                             t.device());
        break;
      case InitKind::UniformFanIn: {
        double bound = 1.0 / std::sqrt(static_cast<double>(e.init.fan));
        v = ops::rand_uniform(t.shape(), key, -bound, bound, t.dtype(), t.device());
        break;
      }
      case InitKind::Ones: v = Tensor::ones(t.shape(), t.dtype(), t.device()); break;
      case InitKind::Zeros: v = Tensor::zeros(t.shape(), t.dtype(), t.device()); break;
      case InitKind::None: return;
    }
    t.copy_(v);
  });
}

Tensor Module::register_parameter(const std::string& name, Tensor t, InitSpec init) {
  if ((init.kind == InitKind::KaimingNormalFanOut || init.kind == InitKind::UniformFanIn) && init.fan <= 0)
    fail("register_parameter '", name, "': a fan-based init needs a positive fan, got ", init.fan);
  t.set_requires_grad(true);
  params_.push_back({name, t, init, false});
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t, bool host) {
  buffers_.push_back({name, t, {}, host});
  return t;
}

void Module::register_module(const std::string& name, Module& child) { children_.emplace_back(name, &child); }

}  // namespace advcl::nn
