// Device dispatch: every op looks at its input's device and runs the CPU loop
// or the CUDA launch. In a build without CUDA the CUDA branch is an error that
// names the op (a CUDA tensor cannot exist there anyway).
//
// Kernels and library calls run on the calling thread's current device
// (cuda/runtime.h), not on the one a tensor names, so an op on a cuda:1
// tensor while cuda:0 is current would fault, or read another GPU's memory
// through peer access. The branch therefore goes through on_cuda(op, device),
// which checks the device against the thread's current one (cached per
// thread: one comparison per op) and fails with both named.
#pragma once
#include <string>

#include "engine/common.h"
#include "engine/device.h"

#if ADVCL_CUDA
#define ADVCL_CUDA_ONLY(...) __VA_ARGS__
#else
#define ADVCL_CUDA_ONLY(...) ::advcl::fail("this advcl was built without CUDA (rebuild with `make CUDA=1`)")
#endif

namespace advcl {

// The error for op `op` on a tensor of `tensor` (a CUDA device) while
// `current` is the thread's current CUDA device; "" when they agree.
std::string cuda_device_mismatch(const char* op, Device tensor, int current);

// Throws cuda_device_mismatch's error unless `tensor` is the current device.
void check_current_device(const char* op, Device tensor);

// Whether an op on tensors of `device` takes the CUDA branch; checks first
// that `device` is the current device.
inline bool on_cuda(const char* op, Device device) {
  if (!device.is_cuda()) return false;
  check_current_device(op, device);
  return true;
}

}  // namespace advcl
