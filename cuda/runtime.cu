// cuda/runtime.h for CUDA builds: device discovery and the start-up check,
// the per-device caching allocators over cudaMalloc/cudaFree, copies, streams.
#include "cuda/runtime.h"

#include <cuda.h>  // driver types only (CUresult, CUdevice): no libcuda link
#include <cudnn.h>
#if ADVCL_NCCL
#include <nccl.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/device_scope_rule.h"
#include "cuda/library_versions.h"

namespace advcl::cuda {

namespace {

// The thread's current device as last set or read (-1: not read yet).
thread_local int t_device = -1;

void select_device(const char* op, int device) {
  ADVCL_CUDA_CHECK(op, cudaSetDevice(device));
  t_device = device;
}

// Whether `device`'s primary context exists (something in this process has
// used the device), asked from the driver without creating one. The driver
// function comes through the runtime, so the binary does not link libcuda
// (it must still start, and find no GPU, where no driver is installed).
// When the driver cannot tell, true: restoring a device is always correct,
// only possibly wasteful.
bool has_primary_context(int device) {
  using GetDevice = CUresult (*)(CUdevice*, int);
  using GetState = CUresult (*)(CUdevice, unsigned int*, int*);
  static const std::pair<GetDevice, GetState> fns = [] {
    auto find = [](const char* name) -> void* {
      void* fn = nullptr;
      cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
      if (cudaGetDriverEntryPointByVersion(name, &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
          found != cudaDriverEntryPointSuccess) {
        cudaGetLastError();
        return nullptr;
      }
      return fn;
    };
    return std::make_pair(reinterpret_cast<GetDevice>(find("cuDeviceGet")),
                          reinterpret_cast<GetState>(find("cuDevicePrimaryCtxGetState")));
  }();
  if (!fns.first || !fns.second) return true;
  CUdevice dev = 0;
  unsigned int flags = 0;
  int active = 0;
  if (fns.first(&dev, device) != CUDA_SUCCESS || fns.second(dev, &flags, &active) != CUDA_SUCCESS) return true;
  return active != 0;
}

// An empty kernel: asking for its attributes tells whether the binary holds
// code this device can run.
__global__ void probe_kernel() {}

// The architectures this file was compiled for, as "8.0, 9.0" (nvcc's
// __CUDA_ARCH_LIST__ is "800,900"); the other .cu files share the flags.
std::string compiled_archs() {
#ifdef __CUDA_ARCH_LIST__
#define ADVCL_STR2(...) #__VA_ARGS__
#define ADVCL_STR(...) ADVCL_STR2(__VA_ARGS__)
  std::string list = ADVCL_STR(__CUDA_ARCH_LIST__), out;
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    int arch = std::atoi(list.substr(start, end - start).c_str());
    if (!out.empty()) out += ", ";
    out += std::to_string(arch / 100) + "." + std::to_string(arch % 100 / 10);
    start = end + 1;
  }
  return out;
#else
  return "8.0 and 9.0 (the Makefile's CUDA_ARCH)";
#endif
}

std::mutex g_mu;
std::vector<char> g_checked;                // per device: check_device passed
std::vector<CachingAllocator*> g_allocators;  // per device, created on first use

thread_local StreamId t_stream = 0;

CachingAllocator& allocator(int device) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (static_cast<int>(g_allocators.size()) <= device) g_allocators.resize(device + 1, nullptr);
  CachingAllocator*& a = g_allocators[device];
  if (!a) {
    RawAllocator raw;
    raw.alloc = [device](size_t n) -> void* {
      DeviceScope scope("device_alloc", device);
      void* p = nullptr;
      cudaError_t e = cudaMalloc(&p, n);
      if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // clear it: the allocator frees its cache and retries
        return nullptr;
      }
      ADVCL_CUDA_CHECK("device_alloc", e);
      return p;
    };
    raw.free = [device](void* p) {
      DeviceScope scope("device_free", device);
      ADVCL_CUDA_CHECK("device_free", cudaFree(p));
    };
    // Never deleted: the allocators must outlive every static Tensor, and
    // at process exit the driver reclaims the memory anyway (cudaFree after
    // the runtime has shut down would fail).
    // ADVCL_CUDA_NO_CACHE=1: every tensor its own cudaMalloc, for compute-sanitizer.
    Caching caching = CachingAllocator::caching_from_env();
    if (caching == Caching::off)
      std::fprintf(stderr, "advcl: cuda:%d: ADVCL_CUDA_NO_CACHE=1: the caching allocator is off (slow)\n", device);
    a = new CachingAllocator(std::move(raw), "cuda:" + std::to_string(device), caching);
  }
  return *a;
}

cudaStream_t stream_of(StreamId s) { return reinterpret_cast<cudaStream_t>(s); }

// Why cudaGetDeviceCount found no device (cudaSuccess when it found some, or
// when it was not asked yet), for check_device's message.
cudaError_t g_count_error = cudaSuccess;

// "13.0" from 13000.
std::string cuda_version_str(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

// cuDNN and NCCL as found at run time against the versions built with
// (cuda/library_versions.h), once per process: another major version is an
// error, an older minor one a warning; both say what to install.
void check_library_versions() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<VersionCheck> checks;
    checks.push_back(check_library_version("cuDNN", CUDNN_VERSION, static_cast<int>(cudnnGetVersion()),
                                           "pip install 'nvidia-cudnn-cu" + std::to_string(CUDART_VERSION / 1000) +
                                               "', or NVIDIA's cuDNN package for CUDA " +
                                               std::to_string(CUDART_VERSION / 1000)));
#if ADVCL_NCCL
    int nccl = 0;
    if (ncclGetVersion(&nccl) == ncclSuccess)
      checks.push_back(check_library_version("NCCL", NCCL_VERSION_CODE, nccl,
                                             "pip install 'nvidia-nccl-cu" + std::to_string(CUDART_VERSION / 1000) +
                                                 "', or the libnccl2 package"));
#endif
    for (const VersionCheck& c : checks) {
      if (c.verdict == VersionVerdict::Incompatible) fail("cuda: ", c.message);
      if (c.verdict == VersionVerdict::Older) std::fprintf(stderr, "warning: cuda: %s\n", c.message.c_str());
    }
  });
}

// The start-up checks that touch no device (creating no context): driver and
// runtime versions, libraries, device count, and that `device` exists.
void check_runtime(int device) {
  int n = device_count();
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  cudaRuntimeGetVersion(&runtime);
  cudaGetLastError();  // neither may leave an error for the next launch check to report
  // CUDA's minor version compatibility: a runtime of major version M runs on
  // any driver of major version M (an older minor one included), so only the
  // major versions must agree. A driver of an older major version makes
  // cudaGetDeviceCount fail (cudaErrorInsufficientDriver): say that rather
  // than "no GPU".
  if (driver > 0 && driver / 1000 < runtime / 1000)
    fail("cuda: the NVIDIA driver supports CUDA ", cuda_version_str(driver), " but advcl uses the CUDA ",
         cuda_version_str(runtime), " runtime: update the driver (CUDA ", runtime / 1000,
         ".x needs a driver of that major version) or rebuild with an older toolkit (NVCC=...)");
  if (n == 0) {
    if (g_count_error != cudaSuccess && g_count_error != cudaErrorNoDevice && driver > 0)
      fail("cuda: no usable CUDA device: cudaGetDeviceCount failed: ", cudaGetErrorName(g_count_error), " (",
           cudaGetErrorString(g_count_error), "); driver CUDA ", cuda_version_str(driver), ", runtime CUDA ",
           cuda_version_str(runtime), "; use --device cpu");
    fail("cuda: no CUDA device is available (no GPU, or no NVIDIA driver); use --device cpu");
  }
  if (device < 0 || device >= n) fail("cuda: device cuda:", device, " does not exist (", n, " device(s) found)");
  check_library_versions();
}
}  // namespace

int current_device() {
  if (t_device < 0) {
    int d = 0;
    ADVCL_CUDA_CHECK("current_device", cudaGetDevice(&d));  // creates no context
    t_device = d;
  }
  return t_device;
}

DeviceScope::DeviceScope(const char* op, int device) {
  int prev = current_device();
  if (prev == device) return;
  select_device(op, device);
  prev_ = prev;
}

DeviceScope::~DeviceScope() {
  if (prev_ < 0 || device_after_scope(prev_, t_device, has_primary_context(prev_)) != prev_) return;
  if (cudaSetDevice(prev_) == cudaSuccess)
    t_device = prev_;
  else
    cudaGetLastError();  // no throw from a destructor; the device stays current, which the cache says
}

int device_count() {
  static int count = [] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {  // no driver, no device, driver too old: no GPU for us
      cudaGetLastError();
      g_count_error = e;
      return 0;
    }
    return n;
  }();
  return count;
}

void check_device(int device) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (device >= 0 && device < static_cast<int>(g_checked.size()) && g_checked[device]) return;
  }
  check_runtime(device);

  cudaDeviceProp prop;
  ADVCL_CUDA_CHECK("cuda start-up", cudaGetDeviceProperties(&prop, device));
  DeviceScope scope("cuda start-up", device);  // a no-op after set_current_device(device)
  cudaFuncAttributes attr;
  cudaError_t e = cudaFuncGetAttributes(&attr, probe_kernel);
  if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction ||
      e == cudaErrorUnsupportedPtxVersion || e == cudaErrorInvalidPtx) {
    cudaGetLastError();
    int cc = prop.major * 10 + prop.minor;
    fail("cuda: ", prop.name, " (cuda:", device, ") has compute capability ", prop.major, ".", prop.minor,
         " but this advcl binary holds code only for compute capabilities ", compiled_archs(),
         " (plus PTX for newer GPUs)",
         e == cudaErrorUnsupportedPtxVersion ? " (and its PTX is too new for the installed driver)" : "",
         ". Rebuild with: make clean && make CUDA=1 CUDA_ARCH='-gencode arch=compute_", cc, ",code=sm_", cc, "'");
  }
  ADVCL_CUDA_CHECK("cuda start-up", e);

  std::lock_guard<std::mutex> lock(g_mu);
  if (static_cast<int>(g_checked.size()) <= device) g_checked.resize(device + 1, 0);
  g_checked[device] = 1;
}

void set_current_device(int device) {
  check_runtime(device);
  select_device("set_current_device", device);  // first: check_device's probe then runs here
  check_device(device);
}

std::string device_description(int device) {
  cudaDeviceProp prop;
  ADVCL_CUDA_CHECK("device_description", cudaGetDeviceProperties(&prop, device));
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major, prop.minor,
                prop.multiProcessorCount, prop.totalGlobalMem / double(1 << 30));
  return buf;
}

int compute_capability(int device) {
  cudaDeviceProp prop;
  ADVCL_CUDA_CHECK("compute_capability", cudaGetDeviceProperties(&prop, device));
  return 10 * prop.major + prop.minor;
}

StreamId current_stream() { return t_stream; }
void set_current_stream(StreamId stream) { t_stream = stream; }

void* device_alloc(size_t nbytes, int device) {
  check_device(device);
  return allocator(device).allocate(nbytes, current_stream());
}

void device_free(void* p, int device) {
  if (!p) return;
  allocator(device).free(p);
}

void empty_cache() {
  std::vector<CachingAllocator*> all;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    all = g_allocators;
  }
  for (CachingAllocator* a : all)
    if (a) a->empty_cache();
}

AllocatorStats memory_stats(int device) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (device < 0 || device >= static_cast<int>(g_allocators.size()) || !g_allocators[device]) return {};
  }
  return allocator(device).stats();
}

std::string memory_summary(int device) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (device < 0 || device >= static_cast<int>(g_allocators.size()) || !g_allocators[device])
      return "cuda:" + std::to_string(device) + " memory: unused";
  }
  return allocator(device).stats_str();
}

void copy(void* dst, bool dst_is_cuda, const void* src, bool src_is_cuda, size_t nbytes) {
  if (nbytes == 0) return;
  cudaMemcpyKind kind = dst_is_cuda ? (src_is_cuda ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                    : (src_is_cuda ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  cudaStream_t s = stream_of(current_stream());
  ADVCL_CUDA_CHECK("copy", cudaMemcpyAsync(dst, src, nbytes, kind, s));
  // The host buffer may be freed or read as soon as we return: wait for it.
  if (!dst_is_cuda || !src_is_cuda) ADVCL_CUDA_CHECK("copy", cudaStreamSynchronize(s));
}

void zero(void* dst, size_t nbytes) {
  if (nbytes == 0) return;
  ADVCL_CUDA_CHECK("zero", cudaMemsetAsync(dst, 0, nbytes, stream_of(current_stream())));
}

void synchronize() { ADVCL_CUDA_CHECK("synchronize", cudaStreamSynchronize(stream_of(current_stream()))); }

}  // namespace advcl::cuda
