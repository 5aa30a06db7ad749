#include "cuda/pinned_upload.h"

#include <cstring>
#include <mutex>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/runtime.h"

namespace advcl::cuda {

namespace {

struct Staging {
  void* host = nullptr;  // pinned (cudaHostAlloc)
  size_t bytes = 0;
  cudaEvent_t done = nullptr;  // recorded after the last copy out of `host`
  bool used = false;           // `done` has been recorded at least once
};

// A handful per step (the views, labels, pseudo-labels); more means uploads
// outrun the GPU, and the host waits for the oldest copy instead.
constexpr size_t kMaxBuffers = 32;

std::mutex g_mu;
std::vector<Staging> g_pool;
size_t g_next_wait = 0;  // round robin over a full pool

bool finished(const Staging& b) {
  if (!b.used) return true;
  cudaError_t e = cudaEventQuery(b.done);
  if (e == cudaSuccess) return true;
  if (e != cudaErrorNotReady) throw_cuda_error("upload_async", "cudaEventQuery", e, __FILE__, __LINE__);
  cudaGetLastError();  // 'not ready' is no error: the next launch check must not report it
  return false;
}

void reserve(Staging& b, size_t nbytes) {
  if (b.bytes >= nbytes) return;
  // Only a pool that is full and too small for a larger batch gets here.
  if (b.host) ADVCL_CUDA_CHECK("upload_async", cudaFreeHost(b.host));
  b.host = nullptr;
  b.bytes = 0;
  ADVCL_CUDA_CHECK("upload_async", cudaHostAlloc(&b.host, nbytes, cudaHostAllocDefault));
  b.bytes = nbytes;
}

// A staging buffer of at least `nbytes` whose previous copy has finished.
Staging& acquire(size_t nbytes) {
  for (Staging& b : g_pool)
    if (b.bytes >= nbytes && finished(b)) return b;
  if (g_pool.size() < kMaxBuffers) {
    g_pool.emplace_back();
    Staging& b = g_pool.back();
    ADVCL_CUDA_CHECK("upload_async", cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming));
    reserve(b, nbytes);
    return b;
  }
  Staging& b = g_pool[g_next_wait++ % kMaxBuffers];
  if (b.used) ADVCL_CUDA_CHECK("upload_async", cudaEventSynchronize(b.done));
  reserve(b, nbytes);
  return b;
}

}  // namespace

void upload_async(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  std::lock_guard<std::mutex> lock(g_mu);
  cudaStream_t s = reinterpret_cast<cudaStream_t>(current_stream());
  Staging& b = acquire(nbytes);
  std::memcpy(b.host, src, nbytes);
  ADVCL_CUDA_CHECK("upload_async", cudaMemcpyAsync(dst, b.host, nbytes, cudaMemcpyHostToDevice, s));
  ADVCL_CUDA_CHECK("upload_async", cudaEventRecord(b.done, s));
  b.used = true;
}

size_t pinned_staging_buffers() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_pool.size();
}

}  // namespace advcl::cuda
