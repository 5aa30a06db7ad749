// The order in which conv2d tries cuDNN's algorithms (engine/ops/conv2d_algorithms.h):
// measured ones fastest first, then cuDNN's guesses; deterministic mode puts
// the non-deterministic ones in a fallback list instead of dropping them.
#include <gtest/gtest.h>

#include "engine/ops/conv2d_algorithms.h"

using namespace advcl::cuda_ops;
using V = std::vector<int>;

namespace {
AlgoPerf perf(int algo, bool deterministic, size_t memory = 0, bool ok = true) {
  return {algo, ok, deterministic, memory};
}
}  // namespace

TEST(ConvAlgorithmOrder, MeasuredFirstThenGuessedWithoutRepeats) {
  AlgoOrder o = order_algorithms({perf(5, true), perf(1, true)}, 100, {perf(1, true), perf(0, true)}, 100, false);
  EXPECT_EQ(o.preferred, (V{5, 1, 0}));
  EXPECT_TRUE(o.fallback.empty());
}

TEST(ConvAlgorithmOrder, UnsupportedAndOverBudgetAreLeftOut) {
  // The measured list's budget is the workspace the measurement had; the
  // heuristics' is the op's upper bound.
  AlgoOrder o = order_algorithms({perf(2, true, 10, false), perf(3, true, 200), perf(4, true, 50)}, 100,
                                 {perf(3, true, 200), perf(6, true, 5000)}, 1000, false);
  EXPECT_EQ(o.preferred, (V{4, 3}));
}

TEST(ConvAlgorithmOrder, NonDeterministicOnesAreTheFallbackInDeterministicMode) {
  std::vector<AlgoPerf> measured{perf(1, false), perf(0, true), perf(3, false)};
  AlgoOrder det = order_algorithms(measured, 0, {}, 0, true);
  EXPECT_EQ(det.preferred, (V{0}));
  EXPECT_EQ(det.fallback, (V{1, 3}));
  AlgoOrder fast = order_algorithms(measured, 0, {}, 0, false);
  EXPECT_EQ(fast.preferred, (V{1, 0, 3}));
  EXPECT_TRUE(fast.fallback.empty());
  // No deterministic algorithm at all (float64 backward-weight on sm_90):
  // nothing preferred, and the op still has every other one to run.
  AlgoOrder none = order_algorithms({perf(2, false), perf(1, false)}, 0, {perf(1, false)}, 0, true);
  EXPECT_TRUE(none.preferred.empty());
  EXPECT_EQ(none.fallback, (V{2, 1}));
}
