// The index math of the CUDA sum_to (engine/kernels/sum_to_index.h), run on the CPU
// against ops::sum_to: every input element is summed exactly once, into the
// right output element.
#include "engine/kernels/sum_to_index.h"

#include <gtest/gtest.h>

#include "engine/ops/elementwise.h"

using namespace advcl;

namespace {

// As elementwise.cpp builds it for sum_to: sizes = x's shape, a_strides =
// the target's row-major strides inside it (0 where summed or absent).
kernels::BroadcastIndex sum_to_index(const Shape& x, const Shape& target) {
  kernels::BroadcastIndex idx;
  idx.ndim = static_cast<int>(x.size());
  size_t lead = x.size() - target.size();
  int64_t s = 1;
  for (size_t i = x.size(); i-- > 0;) {
    idx.sizes[i] = x[i];
    int64_t d = i < lead ? 1 : target[i - lead];
    idx.a_strides[i] = d == 1 ? 0 : s;
    s *= d;
  }
  return idx;
}

void check(const Shape& xs, const Shape& target) {
  SCOPED_TRACE(shape_str(xs) + " -> " + shape_str(target));
  Tensor x = Tensor::empty(xs, DType::Float64);
  double* xp = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) xp[i] = static_cast<double>((i * 7919) % 1009);  // exact sums
  std::vector<double> want = ops::sum_to(x, target).to_vector<double>();

  kernels::SumToIndex si(sum_to_index(xs, target));
  int64_t n_out = static_cast<int64_t>(want.size()), per_out = x.numel() / n_out;
  std::vector<int> seen(static_cast<size_t>(x.numel()), 0);
  for (int64_t j = 0; j < n_out; ++j) {
    double s = 0;
    for (int64_t r = 0; r < per_out; ++r) {
      int64_t off = si.in_offset(j, r);
      ASSERT_GE(off, 0);
      ASSERT_LT(off, x.numel());
      ++seen[off];
      s += xp[off];
    }
    EXPECT_EQ(s, want[j]) << "output " << j;
  }
  for (int c : seen) ASSERT_EQ(c, 1);
}

}  // namespace

TEST(CudaSumToIndex, MatchesSumToOnTheCpu) {
  check({4, 5}, {5});
  check({4, 5}, {4, 1});
  check({4, 5}, {1, 1});
  check({4, 5}, {});
  check({2, 3, 4, 5}, {3, 1, 5});
  check({2, 3, 4, 5}, {2, 1, 4, 1});
  check({2, 1, 4, 5}, {1, 4, 1});
  check({3, 1, 2}, {3, 1, 1});
  check({6, 2, 3, 2, 2}, {2, 1, 2, 1});
}
