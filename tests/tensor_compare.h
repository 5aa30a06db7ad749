// How the tests compare two tensors of one shape, element by element, on the
// CPU in double: the largest absolute difference, or that difference at the
// scale of the expected values.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/tensor.h"

namespace advcl::testing {

inline std::vector<double> host_doubles(const Tensor& t) {
  return t.to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

// max |a - b| (NaN anywhere gives NaN, which fails every bound).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  std::vector<double> x = host_doubles(a), y = host_doubles(b);
  double m = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    double d = std::fabs(x[i] - y[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

// max |a - expected| / max(floor, max |expected|): a relative error at the
// scale of the expected values (floor keeps near-zero tensors absolute).
inline double scaled_diff(const Tensor& a, const Tensor& expected, double floor = 1) {
  std::vector<double> y = host_doubles(expected);
  double scale = floor;
  for (double v : y) scale = std::max(scale, std::fabs(v));
  return max_abs_diff(a, expected) / scale;
}

}  // namespace advcl::testing
