// A reference-counted block of memory on one device. Tensors share a Storage
// through std::shared_ptr; the memory is returned when the last one goes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/device.h"

namespace advcl {

class Storage {
 public:
  // Allocates `nbytes` on `device` (CPU: 64-byte aligned; CUDA: through the
  // cuda/ allocator). Contents are uninitialised.
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

// Copies `nbytes` between any two devices (host<->device through the CUDA
// runtime when one side is a GPU).
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes);
// Sets `nbytes` bytes to zero on `dev`.
void zero_bytes(void* dst, Device dev, size_t nbytes);

// Storages created so far (any device, any size) since the process started:
// tests measure differences, e.g. that a warm optimizer step allocates nothing.
int64_t storage_allocations();

// True when this binary was built with the CUDA backend.
bool cuda_built();

}  // namespace advcl
