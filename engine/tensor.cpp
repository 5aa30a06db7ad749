#include "engine/tensor.h"

#include <cmath>
#include <cstdio>
#include <ostream>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/kernels/convert.h"
#include "engine/ops/convert_cuda.h"
#include "engine/ops/elementwise.h"

namespace advcl {

namespace {

int64_t count(const Shape& shape, const char* op) {
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) fail(op, ": negative dimension in shape ", shape_str(shape));
    n *= s;
  }
  return n;
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  int64_t n = count(shape, "Tensor::empty");
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(n) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  return t.zero_();
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  return t.fill_(value);
}

Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  int64_t i = d < 0 ? d + n : d;
  if (i < 0 || i >= n) fail("Tensor::size: dimension ", d, " out of range for shape ", shape_str(shape()));
  return shape()[static_cast<size_t>(i)];
}

int64_t Tensor::numel() const { return count(shape(), "Tensor::numel"); }

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset * static_cast<int64_t>(dtype_size(dtype()));
}

double Tensor::item() const {
  if (numel() != 1) fail("Tensor::item: tensor of shape ", shape_str(shape()), " has ", numel(), " elements, not 1");
  if (device().is_cpu()) counters::count_host_sync();  // (to() counts a device's copy)
  Tensor h = device().is_cpu() ? *this : to(Device::cpu());
  return visit_dtype(dtype(), [&](auto v) {
    using T = decltype(v);
    return static_cast<double>(static_cast<const T*>(h.raw_data())[0]);
  });
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape(), dtype(), device());
  copy_bytes(t.raw_data(), device(), raw_data(), device(), nbytes());
  return t;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) {
    // On the CPU a no-op, but the same call with a GPU in either place is a
    // copy the host waits for: count it so CPU tests see it.
    if (dev.is_cpu()) counters::count_host_sync();
    return *this;
  }
  // copy_bytes counts the host <-> device copy.
  Tensor t = empty(shape(), dtype(), dev);
  copy_bytes(t.raw_data(), dev, raw_data(), device(), nbytes());
  return t;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = empty(shape(), dt, device());
  if (on_cuda("Tensor::to", device())) {
    // On the device itself: a batch norm of a float32 model converts its
    // per-channel parameters every call, and must not wait for the host.
    ADVCL_CUDA_ONLY(cuda_ops::convert(raw_data(), dtype(), out.raw_data(), dt, numel()));
    return out;
  }
  visit_dtype(dt, [&](auto d) {
    using D = decltype(d);
    visit_dtype(dtype(), [&](auto s) {
      using S = decltype(s);
      const S* in = static_cast<const S*>(raw_data());
      D* o = static_cast<D*>(out.raw_data());
      for (int64_t i = 0, n = numel(); i < n; ++i) o[i] = kernels::convert_element<D>(in[i]);
    });
  });
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(impl);
}

Tensor Tensor::view(const Shape& new_shape) const {
  if (count(new_shape, "Tensor::view") != numel())
    fail("Tensor::view: cannot view shape ", shape_str(shape()), " as ", shape_str(new_shape));
  Tensor t = detach();
  t.impl_->shape = new_shape;
  return t;
}

Tensor Tensor::narrow0(int64_t start, int64_t length) const {
  if (dim() < 1 || start < 0 || length < 0 || start + length > size(0))
    fail("Tensor::narrow0: rows [", start, ", ", start + length, ") out of range for shape ", shape_str(shape()));
  Tensor t = detach();
  t.impl_->shape[0] = length;
  t.impl_->offset += start * (dim() ? numel() / std::max<int64_t>(size(0), 1) : 0);
  return t;
}

Tensor& Tensor::fill_(double value) {
  if (device().is_cuda() && (dtype() == DType::Float32 || dtype() == DType::Float64)) {
    // On the device itself (zero, then add the value): Tensor::ones/full on
    // a GPU, e.g. backward's seed gradient, must not wait for the host.
    zero_();
    if (value != 0) {
      Tensor v = ops::add(detach(), value);
      copy_bytes(raw_data(), device(), v.raw_data(), device(), nbytes());
    }
    return *this;
  }
  Tensor h = device().is_cpu() ? *this : empty(shape(), dtype(), Device::cpu());
  visit_dtype(dtype(), [&](auto v) {
    using T = decltype(v);
    T x;
    if constexpr (std::is_same_v<T, BFloat16>)
      x = BFloat16(static_cast<float>(value));
    else
      x = static_cast<T>(value);
    T* p = static_cast<T*>(h.raw_data());
    int64_t n = numel();
    for (int64_t i = 0; i < n; ++i) p[i] = x;
  });
  if (!device().is_cpu()) copy_bytes(raw_data(), device(), h.raw_data(), Device::cpu(), nbytes());
  return *this;
}

Tensor& Tensor::zero_() {
  zero_bytes(raw_data(), device(), nbytes());
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  if (src.numel() != numel())
    fail("Tensor::copy_: source shape ", shape_str(src.shape()), " does not match destination shape ",
         shape_str(shape()));
  Tensor s = src.to(dtype());
  copy_bytes(raw_data(), device(), s.raw_data(), s.device(), nbytes());
  return *this;
}

Tensor& Tensor::set_requires_grad(bool on) {
  if (!is_leaf()) fail("set_requires_grad: only leaf tensors can be marked; this one was made by op '",
                       impl().grad_fn->name, "'");
  if (on && !is_floating(dtype()))
    fail("set_requires_grad: tensors of dtype ", dtype_name(dtype()), " cannot require gradients");
  impl().requires_grad = on;
  return *this;
}

// --- printing ---------------------------------------------------------------

namespace {
void print_rec(std::ostream& os, const Tensor& h, size_t d, int64_t& idx, const std::string& indent) {
  const Shape& s = h.shape();
  auto elem = [&](int64_t i) {
    visit_dtype(h.dtype(), [&](auto v) {
      using T = decltype(v);
      const T* p = static_cast<const T*>(h.raw_data());
      if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, BFloat16>) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4f", static_cast<double>(p[i]));
        os << buf;
      } else {
        os << static_cast<int64_t>(p[i]);
      }
    });
  };
  if (s.empty()) {
    elem(idx++);
    return;
  }
  os << "[";
  for (int64_t i = 0; i < s[d]; ++i) {
    if (i) os << (d + 1 == s.size() ? ", " : ",\n" + indent + " ");
    if (d + 1 == s.size())
      elem(idx++);
    else
      print_rec(os, h, d + 1, idx, indent + " ");
  }
  os << "]";
}
}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(";
  if (numel() <= 1000) {
    Tensor h = to(Device::cpu());
    int64_t idx = 0;
    print_rec(os, h, 0, idx, "       ");
  } else {
    os << "<" << numel() << " elements>";
  }
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

// --- checks -------------------------------------------------------------------

void check_dtype(const char* op, const Tensor& t, DType want) {
  if (t.dtype() != want)
    fail(op, ": expected dtype ", dtype_name(want), ", got ", dtype_name(t.dtype()), " (shape ",
         shape_str(t.shape()), ")");
}

void check_same_device(const char* op, const Tensor& t, const Tensor& input, const char* what) {
  if (t.device() != input.device()) fail(op, ": ", what, " on ", t.device().str(), ", input on ", input.device().str());
}

void check_same_kind(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    fail(op, ": dtype mismatch, ", dtype_name(a.dtype()), " ", shape_str(a.shape()), " vs ", dtype_name(b.dtype()),
         " ", shape_str(b.shape()));
  if (a.device() != b.device())
    fail(op, ": device mismatch, ", a.device().str(), " ", shape_str(a.shape()), " vs ", b.device().str(), " ",
         shape_str(b.shape()));
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) fail(op, ": shape mismatch, ", shape_str(a.shape()), " vs ", shape_str(b.shape()));
}

void check_dim(const char* op, const Tensor& t, int64_t d, const char* what) {
  if (t.dim() != d)
    fail(op, ": expected a ", d, "-D ", what, ", got shape ", shape_str(t.shape()));
}

}  // namespace advcl
