#include "engine/rng_device_probe.h"

#include "cuda/device_buffer.cuh"
#include "cuda/launch.cuh"

namespace advcl::cuda {

namespace {
struct Words {
  RngKey key;
  uint64_t first;
  uint32_t* out;
  __device__ void operator()(int64_t i) const { out[i] = key.word(first + static_cast<uint64_t>(i)); }
};
}  // namespace

std::vector<uint32_t> rng_words_on_device(const RngKey& key, uint64_t first, int64_t n) {
  std::vector<uint32_t> host(static_cast<size_t>(n > 0 ? n : 0));
  if (n <= 0) return host;
  DeviceBuffer buf("rng_words_on_device", sizeof(uint32_t) * host.size());
  launch("rng_words_on_device", n, Words{key, first, buf.as<uint32_t>()});
  copy(host.data(), false, buf.get(), true, sizeof(uint32_t) * host.size());
  return host;
}

}  // namespace advcl::cuda
