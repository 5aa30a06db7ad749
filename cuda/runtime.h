// The CUDA runtime layer of advcl: device memory (through the caching
// allocator), copies, the current stream, and device discovery.
//
// This header includes no CUDA header, so plain C++ files (engine/storage.cpp,
// the tests) can include it in any build. In a build without CUDA only
// device_count() (always 0) and the allocator-free helpers are defined
// (cuda/runtime_nocuda.cpp); everything else is defined in cuda/runtime.cu.
#pragma once
#include <cstddef>
#include <string>

#include "cuda/caching_allocator.h"

namespace advcl::cuda {

// Number of usable CUDA devices; 0 (never an error) when the build has no
// CUDA, no driver is installed, or no GPU is present, so tests can skip.
int device_count();

// Throws unless `device` exists and this binary holds machine code (or PTX
// the driver can compile) for its compute capability; the message says how
// to rebuild. The first call also compares the driver, cuDNN and NCCL with
// the versions the build used (cuda/library_versions.h). Called once per
// device before its first allocation.
void check_device(int device);

// Makes `device` the calling thread's current device, then checks it
// (check_device): kernels, cuBLAS, cuDNN and cuFFT run on the current
// device, so a process that works on cuda:N (--device cuda:N, or rank N's
// GPU under mpirun) must select it before its first op; an op on a tensor of
// another device is an error (engine/dispatch.h). Selecting first means the
// check's probe creates no context on any other GPU. Memory is placed by the
// tensor's own device either way.
void set_current_device(int device);

// The calling thread's current device, as set_current_device or a
// DeviceScope left it (cached per thread: the ops' device check asks on
// every launch). Devices are switched only through these two, never by
// cudaSetDevice elsewhere, so the cache stays true.
int current_device();

// Makes `device` current for a scope (an allocation on another device, the
// NCCL transport). On exit the previous device becomes current again only
// if it has a context already: switching back to a device that nothing has
// used would create a context there (0.3-0.5 GB of GPU memory, on GPU 0 for
// every rank of a multi-GPU run). Otherwise `device` stays current.
class DeviceScope {
 public:
  DeviceScope(const char* op, int device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int prev_ = -1;  // -1: nothing to restore
};

// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
std::string device_description(int device);
// The device's compute capability as 10 * major + minor (90 for an H100).
int compute_capability(int device);

// The stream advcl's kernels, copies and allocations use on this thread;
// the legacy default stream (0) unless set. As an opaque number (cudaStream_t).
StreamId current_stream();
void set_current_stream(StreamId stream);

// Device memory through the caching allocator of `device`, tagged with the
// current stream. nbytes == 0 gives nullptr.
void* device_alloc(size_t nbytes, int device);
void device_free(void* p, int device);
// Releases cached, unused device memory of every device back to the driver.
void empty_cache();
// The statistics of `device`'s allocator (zeros if it was never used).
AllocatorStats memory_stats(int device);
std::string memory_summary(int device);

// Copies between host and device in any direction, ordered on the current
// stream; returns when the host side may be read or reused.
void copy(void* dst, bool dst_is_cuda, const void* src, bool src_is_cuda, size_t nbytes);
// Zeros device memory (on the current stream).
void zero(void* dst, size_t nbytes);
// Waits for all work on the current stream.
void synchronize();

}  // namespace advcl::cuda
