// Scratch device memory (workspaces, temporaries) from the caching
// allocator, returned when the scope ends. Returning it before the kernels
// that use it have run is safe: the block is tagged with the current stream
// and only reused by later work on that same stream.
#pragma once
#include "cuda/check.cuh"
#include "cuda/runtime.h"

namespace advcl::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer(const char* op, size_t nbytes) {
    ADVCL_CUDA_CHECK(op, cudaGetDevice(&device_));
    p_ = device_alloc(nbytes, device_);
  }
  ~DeviceBuffer() { device_free(p_, device_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return p_; }
  template <class T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  void* p_ = nullptr;
  int device_ = 0;
};

}  // namespace advcl::cuda
