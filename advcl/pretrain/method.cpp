#include "advcl/pretrain/method.h"

#include <mutex>

#include "advcl/pretrain/methods.h"

namespace advcl::method {

namespace {

// The methods `advcl pretrain --method` offers, in --help order. One line per method.
std::vector<PretrainMethod> builtin_methods() {
  return {
      advcl_method(),
      acl_method(),
  };
}

struct Registry {
  std::mutex mutex;
  std::vector<PretrainMethod> methods = builtin_methods();
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_method(PretrainMethod method) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (method.name.empty()) fail("register_method: a method needs a name");
  if (method.bn_sets.empty()) fail("register_method: method '", method.name, "' declares no BN statistic set");
  if (!method.views || !method.step || !method.pseudo_labels)
    fail("register_method: method '", method.name, "' lacks its views, step or pseudo_labels function");
  for (const PretrainMethod& m : r.methods)
    if (m.name == method.name) fail("register_method: a method called '", method.name, "' exists already");
  r.methods.push_back(std::move(method));
}

const PretrainMethod& find_method(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const PretrainMethod& m : r.methods)
    if (m.name == name) return m;
  std::vector<std::string> known;
  for (const PretrainMethod& m : r.methods) known.push_back(m.name);
  fail("--method: '", name, "' is not a pretraining method (known: ", join(known, ", "), ")");
}

std::vector<std::string> method_names() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const PretrainMethod& m : r.methods) names.push_back(m.name);
  return names;
}

}  // namespace advcl::method
