// The finite check before a checkpoint: which tensors hold inf or NaN, found
// with one host read for the whole list; and the engine's anomaly mode, which
// names the first op whose output (or input gradient) is not finite.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "engine/counters.h"
#include "engine/finite_check.h"
#include "engine/ops.h"

using namespace advcl;

namespace {

Tensor vec(std::vector<float> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector<float>(std::move(v), {n});
}

}  // namespace

TEST(FiniteCheck, NamesEveryTensorWithInfOrNanInOneRead) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::vector<Tensor> ts{vec({1, 2, 3}),
                         vec({1, inf, 3}),
                         Tensor::from_vector<int64_t>({7}, {1}),  // integers: always finite, skipped
                         vec({-inf}),
                         vec({3.0e38f, 3.0e38f}),  // finite, though their sum is not
                         Tensor::from_vector<double>({0, std::nan("")}, {2}),
                         vec({nan, 1})};
  const int64_t reads = counters::host_syncs();
  std::vector<size_t> bad = non_finite_tensors(ts);
  EXPECT_EQ(counters::host_syncs() - reads, 1) << "one read for the whole list";
  EXPECT_EQ(bad, (std::vector<size_t>{1, 3, 5, 6}));
  EXPECT_TRUE(non_finite_tensors({vec({0, 1}), Tensor::zeros({2, 3}, DType::Float64)}).empty());
  EXPECT_EQ(non_finite_names({{"a", vec({1})}, {"b", vec({nan})}}), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(all_finite(vec({-5, 5})));
  EXPECT_FALSE(all_finite(vec({5, -inf})));
}

TEST(AnomalyMode, NamesTheOpWhoseOutputIsNotFinite) {
  Tensor x = vec({1, -1, 2});
  x.set_requires_grad(true);
  // Off (the default): a NaN passes silently, as in PyTorch.
  EXPECT_FALSE(detect_anomaly_enabled());
  EXPECT_NO_THROW(ops::log(x));
  DetectAnomalyGuard on;
  try {
    ops::sqrt(ops::mul(ops::log(x), 2.0));
    FAIL() << "no anomaly reported";
  } catch (const AnomalyError& e) {
    EXPECT_EQ(e.op, "log");  // the first op whose result is NaN, not the later sqrt
    EXPECT_NE(std::string(e.what()).find("op 'log'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("its output"), std::string::npos) << e.what();
  }
}

TEST(AnomalyMode, NamesTheBackwardThatReturnsANonFiniteGradient) {
  // sqrt(0) is finite, its derivative 1 / (2 sqrt(0)) is not.
  Tensor x = vec({0, 4});
  x.set_requires_grad(true);
  Tensor y = ops::sum(ops::sqrt(x));
  DetectAnomalyGuard on;
  try {
    backward(y);
    FAIL() << "no anomaly reported";
  } catch (const AnomalyError& e) {
    EXPECT_EQ(e.op, "sqrt");
    EXPECT_NE(std::string(e.what()).find("gradient of its input 0 (backward)"), std::string::npos) << e.what();
  }
}

TEST(AnomalyMode, GuardRestoresTheSetting) {
  {
    DetectAnomalyGuard on;
    EXPECT_TRUE(detect_anomaly_enabled());
  }
  EXPECT_FALSE(detect_anomaly_enabled());
}
