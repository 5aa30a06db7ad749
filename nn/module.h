// Modules: objects that own named parameters and buffers, as torch.nn.Module.
//
// A module registers its tensors and its child modules by name; the state
// dict walks them in registration order (own parameters, own buffers, then
// each child under "<child>."), which is exactly PyTorch's state_dict order,
// so our checkpoint names are the reference's names.
//
// Tensors are handles: the module's members and the registry share one
// TensorImpl, so loading a state dict (copy_ into the tensor) and moving to a
// device (to(), which swaps the storage under the same TensorImpl) are seen
// through every handle. Modules are therefore neither copyable nor movable.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace advcl::nn {

enum class TensorKind { Parameter, Buffer };

struct NamedTensor {
  std::string name;
  Tensor tensor;
  TensorKind kind = TensorKind::Parameter;
};
// An ordered state dict (names are unique).
using StateDict = std::vector<NamedTensor>;

// How init_parameters() fills a parameter.
enum class InitKind {
  None,                // leave as constructed
  KaimingNormalFanOut, // N(0, 2 / fan) with fan = fan_out (PyTorch kaiming_normal_, mode fan_out, ReLU gain)
  UniformFanIn,        // U(-1/sqrt(fan), 1/sqrt(fan)) with fan = fan_in (PyTorch's Linear default)
  Ones,
  Zeros,
};
struct InitSpec {
  InitKind kind = InitKind::None;
  int64_t fan = 0;
};

class Module {
 public:
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Parameters then buffers of each module, depth first, in registration order.
  StateDict state_dict() const;
  StateDict named_parameters() const;
  std::vector<Tensor> parameters() const;

  // Training mode (batch statistics in BN) or evaluation mode (running statistics).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)):
  // SGD then skips parameters that no loss reached, as torch.optim.SGD does.
  void zero_grad();

  // Moves every tensor to `device` / converts floating tensors to `dtype`, in
  // place (handles stay valid). Host buffers (BN's num_batches_tracked) stay
  // on the CPU; integer tensors keep their dtype. Gradients are dropped.
  void to(Device device);
  void to(DType dtype);

  // (Re)initialises every parameter by its InitSpec. Each parameter draws from
  // its own random stream, keyed by (seed, RngPurpose::Init, step = FNV-1a
  // hash of its full name): initialisation is reproducible and adding a layer
  // does not change the others' initial values. `prefix`: the name this
  // module has inside the model it is part of, so that a part initialised on
  // its own draws what initialising the whole model would give it (a model
  // composed around an initialised backbone initialises only its heads).
  void init_parameters(uint64_t seed, const std::string& prefix = "");

 protected:
  Module() = default;
  // Registers `t` (which will require gradients) under `name`; returns it.
  Tensor register_parameter(const std::string& name, Tensor t, InitSpec init = {});
  // `host`: stays on the CPU when the module moves (a counter read by the host).
  Tensor register_buffer(const std::string& name, Tensor t, bool host = false);
  // `child` must outlive this module (it is a member, or owned by one).
  // An empty name puts the child's tensors directly under this module's prefix.
  void register_module(const std::string& name, Module& child);

 private:
  struct Entry {
    std::string name;
    Tensor tensor;
    InitSpec init;
    bool host = false;
  };
  template <class Fn>
  void visit(const std::string& prefix, Fn&& fn) const;

  std::vector<Entry> params_, buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

// "a" + "." + "b", skipping empty parts.
std::string join_name(const std::string& prefix, const std::string& name);

}  // namespace advcl::nn
