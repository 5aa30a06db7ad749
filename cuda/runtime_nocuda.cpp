// cuda/runtime.h for builds without CUDA: there are no devices, so callers
// (the CLI, the tests) can ask device_count() in any build; everything that
// would touch a device is an error that says how to get CUDA.
#include "cuda/runtime.h"

#if !ADVCL_CUDA
#include "cuda/base.h"

namespace advcl::cuda {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  fail(what, ": this advcl was built without CUDA (rebuild with `make CUDA=1` on a machine with nvcc)");
}
}  // namespace

int device_count() { return 0; }
void check_device(int) { no_cuda("cuda"); }
void set_current_device(int) { no_cuda("cuda"); }
int current_device() { no_cuda("current_device"); }
DeviceScope::DeviceScope(const char*, int) { no_cuda("DeviceScope"); }
DeviceScope::~DeviceScope() = default;
std::string device_description(int) { no_cuda("device_description"); }
int compute_capability(int) { no_cuda("compute_capability"); }
StreamId current_stream() { return 0; }
void set_current_stream(StreamId) {}
void* device_alloc(size_t, int) { no_cuda("device_alloc"); }
void device_free(void* p, int) {
  if (p) no_cuda("device_free");
}
void empty_cache() {}
AllocatorStats memory_stats(int) { return {}; }
std::string memory_summary(int device) { return "cuda:" + std::to_string(device) + " memory: built without CUDA"; }
void copy(void*, bool, const void*, bool, size_t) { no_cuda("copy"); }
void zero(void*, size_t) { no_cuda("zero"); }
void synchronize() {}

}  // namespace advcl::cuda
#endif
