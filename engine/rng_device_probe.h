// Device-side probes for the tests (defined in engine/rng_device_probe.cu, CUDA builds
// only): they run shared __host__ __device__ code on the GPU so tests can
// compare it with the same code on the CPU.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"

namespace advcl::cuda {

// key.word(first + i) for i in [0, n), computed by a kernel.
std::vector<uint32_t> rng_words_on_device(const RngKey& key, uint64_t first, int64_t n);

}  // namespace advcl::cuda
