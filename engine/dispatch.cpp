#include "engine/dispatch.h"

#include "cuda/runtime.h"

namespace advcl {

std::string cuda_device_mismatch(const char* op, Device tensor, int current) {
  if (!tensor.is_cuda() || tensor.index == current) return "";
  return std::string(op) + ": the tensor is on " + tensor.str() + " but the current device is cuda:" +
         std::to_string(current) +
         " (kernels run on the current device): select the tensor's device first (--device " + tensor.str() +
         ", cuda::set_current_device(" + std::to_string(tensor.index) + ")) or move the tensor with .to(Device)";
}

void check_current_device(const char* op, Device tensor) {
  int current = cuda::current_device();
  if (tensor.index != current) fail(cuda_device_mismatch(op, tensor, current));
}

}  // namespace advcl
