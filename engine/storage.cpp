#include "engine/storage.h"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "engine/common.h"
#include "engine/counters.h"
#if ADVCL_CUDA
#include "cuda/runtime.h"
#endif

namespace advcl {

#if !ADVCL_CUDA
namespace {
[[noreturn]] void no_cuda(const char* what) {
  fail(what, ": this advcl was built without CUDA (rebuild with `make CUDA=1` on a machine with nvcc)");
}
}  // namespace
#endif

bool cuda_built() { return ADVCL_CUDA != 0; }

namespace {
// Training allocates and frees the same large activation blocks every step.
// By default glibc serves blocks above a threshold with fresh mmap() pages
// and returns them on free(), so every step pays page faults and zeroing of
// the kernel's fresh pages. Keeping big blocks in the heap makes them reusable
// (a CPU counterpart of the CUDA caching allocator).
const bool g_host_heap_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return true;
}();
}  // namespace

namespace {
std::atomic<int64_t> g_storage_allocations{0};
}  // namespace

int64_t storage_allocations() { return g_storage_allocations.load(std::memory_order_relaxed); }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  g_storage_allocations.fetch_add(1, std::memory_order_relaxed);
  if (device.is_cpu()) {
    size_t rounded = (nbytes + 63) / 64 * 64;
    data_ = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    if (rounded && !data_) fail("out of host memory allocating ", nbytes, " bytes");
  } else {
#if ADVCL_CUDA
    data_ = cuda::device_alloc(nbytes, device.index);
#else
    no_cuda("allocating a tensor on cuda");
#endif
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    std::free(data_);
  } else {
#if ADVCL_CUDA
    cuda::device_free(data_, device_.index);
#endif
  }
}

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
#if ADVCL_CUDA
  // A copy between host and device synchronises the stream (cuda::copy): a
  // host round trip (engine/counters.h).
  if (dst_dev.is_cpu() || src_dev.is_cpu()) counters::count_host_sync();
  cuda::copy(dst, dst_dev.is_cuda(), src, src_dev.is_cuda(), nbytes);
#else
  no_cuda("copying to or from cuda");
#endif
}

void zero_bytes(void* dst, Device dev, size_t nbytes) {
  if (nbytes == 0) return;
  if (dev.is_cpu()) {
    std::memset(dst, 0, nbytes);
    return;
  }
#if ADVCL_CUDA
  cuda::zero(dst, nbytes);
#else
  no_cuda("zeroing cuda memory");
#endif
}

}  // namespace advcl
