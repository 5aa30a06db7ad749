// The tensor: a shape, a dtype and a device over a shared Storage, plus the
// autograd fields (requires_grad, grad, and the Node that produced it).
//
// Storage is always contiguous and row-major. A Tensor is a cheap handle
// (a shared_ptr): copying a Tensor shares the data, `clone()` copies it.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/common.h"
#include "engine/counters.h"
#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/storage.h"

namespace advcl {

struct Node;  // engine/autograd.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements, for views that start inside a storage
  Shape shape;
  DType dtype = DType::Float32;
  // autograd
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- creation -----------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
                     Device device = Device::cpu());
  // A tensor holding `values` (copied), on the CPU, then moved to `device`.
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::Float32, Device device = Device::cpu());

  // --- properties ---------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  TensorImpl* get() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // --- data ---------------------------------------------------------------
  void* raw_data() const;
  // Typed pointer; checks that T matches the dtype.
  template <class T>
  T* data() const;
  // Copies to a host vector (from any device), converting nothing. A host
  // round trip on any device (engine/counters.h).
  template <class T>
  std::vector<T> to_vector() const;
  // The single element of a one-element tensor, as double. A host round trip
  // on any device: a training step returns its values as device tensors.
  double item() const;

  // --- copies and conversions ---------------------------------------------
  Tensor clone() const;
  // A host round trip when the source or the target is the host (on the CPU
  // too, where it copies nothing): on a GPU the host waits for the copy.
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  // Shares the data, drops autograd history.
  Tensor detach() const;
  // Shares the data under a new shape with the same element count. No
  // autograd (use ops::reshape for that).
  Tensor view(const Shape& shape) const;
  // Rows [start, start+length) of dimension 0, sharing the data. No autograd
  // (use ops::slice for that).
  Tensor narrow0(int64_t start, int64_t length) const;

  // --- in-place (never recorded by autograd) -------------------------------
  Tensor& fill_(double value);
  Tensor& zero_();
  // Copies src's values into this tensor (same shape; converts dtype and device).
  Tensor& copy_(const Tensor& src);

  // --- autograd -----------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as needing a gradient (only leaves may be set by hand).
  Tensor& set_requires_grad(bool on = true);
  // The accumulated gradient of a leaf after backward(); undefined if none.
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }

  // --- printing -----------------------------------------------------------
  // PyTorch-like text; tensors over 1000 elements print a summary.
  std::string str() const;

 private:
  TensorImpl& impl() const {
    if (!impl_) fail("use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Throws unless `t` has dtype `want`; the message names `op`.
void check_dtype(const char* op, const Tensor& t, DType want);
// Throws unless `a` and `b` share dtype and device; the message names `op` and both shapes.
void check_same_kind(const char* op, const Tensor& a, const Tensor& b);
// Throws unless `t` (an operand named `what`: labels, indices, a weight) is
// on the device of `input`: a kernel would otherwise read another device's
// memory.
void check_same_device(const char* op, const Tensor& t, const Tensor& input, const char* what);
// Throws unless `a` and `b` have the same shape.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
// Throws unless t.dim() == d.
void check_dim(const char* op, const Tensor& t, int64_t d, const char* what = "input");

// --- template definitions -------------------------------------------------
template <class T>
T* Tensor::data() const {
  if (DTypeOf<T>::value != dtype())
    fail("Tensor::data: asked for ", dtype_name(DTypeOf<T>::value), " but the tensor holds ", dtype_name(dtype()));
  return static_cast<T*>(raw_data());
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  Tensor t = empty(shape, DTypeOf<T>::value, Device::cpu());
  if (static_cast<int64_t>(values.size()) != t.numel())
    fail("Tensor::from_vector: ", values.size(), " values do not fill shape ", shape_str(shape));
  copy_bytes(t.raw_data(), Device::cpu(), values.data(), Device::cpu(), t.nbytes());
  return device.is_cpu() ? t : t.to(device);
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  if (DTypeOf<T>::value != dtype())
    fail("Tensor::to_vector: asked for ", dtype_name(DTypeOf<T>::value), " but the tensor holds ", dtype_name(dtype()));
  std::vector<T> out(static_cast<size_t>(numel()));
  if (device().is_cpu()) counters::count_host_sync();  // (copy_bytes counts a device's copy)
  copy_bytes(out.data(), Device::cpu(), raw_data(), device(), nbytes());
  return out;
}

}  // namespace advcl
