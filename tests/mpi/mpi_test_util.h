// Helpers of the multi-rank tests: contiguous shards of a batch and
// tolerance comparisons of whole state dicts against a one-rank reference.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "nn/parallel/communicator.h"
#include "nn/module.h"

namespace advcl::test {

// Rows [begin, end) of rank `rank` among `world` for a batch of B: the
// first B % world ranks take one row more (so ranks hold unequal counts
// when world does not divide B, like the last batch of an epoch).
inline std::pair<int64_t, int64_t> shard(int64_t B, int rank, int world) {
  int64_t base = B / world, extra = B % world;
  int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

// Every tensor of `got` within float32 tolerance of `want` (same names, order).
inline void expect_state_near(const nn::StateDict& got, const nn::StateDict& want, double atol = 2e-5,
                              double rtol = 1e-4) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].name, want[i].name);
    std::vector<double> a = got[i].tensor.to(DType::Float64).to_vector<double>();
    std::vector<double> b = want[i].tensor.to(DType::Float64).to_vector<double>();
    ASSERT_EQ(a.size(), b.size()) << got[i].name;
    double worst = 0;
    size_t at = 0;
    for (size_t k = 0; k < a.size(); ++k) {
      double excess = std::fabs(a[k] - b[k]) - (atol + rtol * std::fabs(b[k]));
      if (excess > worst) worst = excess, at = k;
    }
    EXPECT_EQ(worst, 0.0) << got[i].name << "[" << at << "]: " << a[at] << " vs one rank's " << b[at];
  }
}

}  // namespace advcl::test
