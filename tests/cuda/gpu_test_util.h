// What the GPU tests share: the skip on machines without a GPU (or builds
// without CUDA), the device they run on, random inputs and the CPU/GPU
// comparison measure.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/runtime.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/storage.h"

namespace advcl::gpu_test {

// Skips the calling test unless this build has CUDA and the machine a GPU.
#define REQUIRE_GPU()                                                                \
  do {                                                                               \
    if (!::advcl::cuda_built()) GTEST_SKIP() << "built without CUDA";                \
    if (::advcl::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device here";   \
  } while (0)

inline const Device kGpu = Device::cuda(0);

// Standard normal values of test stream `stream`, sample `sample`.
inline Tensor randn(const Shape& s, uint32_t stream, uint32_t sample, DType dt = DType::Float64) {
  return ops::rand_normal(s, RngKey{42, static_cast<uint32_t>(RngPurpose::Test), stream, sample}, 0, 1, dt);
}

// max |a - b| / max(1, |b|) over the elements, both moved to the CPU as double.
inline double max_rel_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  std::vector<double> x = a.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  std::vector<double> y = b.to(Device::cpu()).to(DType::Float64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    double d = std::fabs(x[i] - y[i]) / std::max(1.0, std::fabs(y[i]));
    if (!(d <= m)) m = d;  // NaN propagates as a failure
  }
  return m;
}

}  // namespace advcl::gpu_test
