// The bucket plan of the gradient reducer, and its one-process behaviour
// (the multi-rank behaviour is tested under mpirun: tests/mpi/equivalence_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>

#include "engine/ops.h"
#include "nn/parallel/gradient_reducer.h"
#include "nn/parallel/nccl_all_reduce.h"
#include "nn/resnet.h"

using namespace advcl;
using Buckets = std::vector<std::vector<size_t>>;

TEST(GradientReducer, BucketsTakeParametersInReverseOrderUpToTheCap) {
  // Sizes 4, 3, 2, 5 (registration order) with cap 6: backward finishes the
  // last parameter first, so bucket 0 is {3}, then {2, 1} (2+3 <= 6), then {0}.
  EXPECT_EQ(dist::plan_buckets({4, 3, 2, 5}, 6), (Buckets{{3}, {2, 1}, {0}}));
  // A parameter larger than the cap gets a bucket of its own.
  EXPECT_EQ(dist::plan_buckets({1, 10, 1}, 4), (Buckets{{2}, {1}, {0}}));
  // Everything fits: one bucket.
  EXPECT_EQ(dist::plan_buckets({1, 2, 3}, 100), (Buckets{{2, 1, 0}}));
  EXPECT_EQ(dist::plan_buckets({}, 100), Buckets{});
  EXPECT_THROW(dist::plan_buckets({1}, 0), Error);
}

TEST(GradientReducer, OneProcessIsAPlainBackward) {
  Tensor w = Tensor::from_vector<double>({1, -2, 3}, {3}).set_requires_grad();
  dist::GradientReducer reducer({{"w", w, nn::TensorKind::Parameter}});
  reducer.backward(ops::sum(ops::mul(w, w)));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{2, -4, 6}));
}

TEST(GradientReducer, RejectsAParameterListedTwiceAndIntegerParameters) {
  Tensor w = Tensor::from_vector<double>({1}, {1}).set_requires_grad();
  EXPECT_THROW(dist::GradientReducer({{"w", w, nn::TensorKind::Parameter}, {"v", w, nn::TensorKind::Parameter}}),
               Error);
  Tensor i = Tensor::from_vector<int64_t>({1}, {1});
  EXPECT_THROW(dist::GradientReducer({{"i", i, nn::TensorKind::Parameter}}), Error);
}

TEST(GradientReducer, NcclIsAvailableExactlyInNcclBuilds) {
  EXPECT_EQ(dist::nccl_available(), ADVCL_NCCL == 1);
  if (!dist::nccl_available()) {
    EXPECT_THROW(dist::make_nccl_bucket_all_reduce(dist::world(), Device::cuda(0)), Error);
  }
}

// The bucket packing, flags and unpacking, in one process through the MPI
// transport given explicitly (a sum over one rank is the identity): every
// gradient comes back unchanged and the buckets start during backward.
TEST(GradientReducer, BucketsRoundTripInOneProcess) {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}).set_requires_grad();
  Tensor b = Tensor::from_vector<float>({-1, 5}, {2}).set_requires_grad();
  Tensor c = Tensor::from_vector<float>({0.5}, {1}).set_requires_grad();
  Tensor unused = Tensor::from_vector<float>({9}, {1}).set_requires_grad();
  nn::StateDict params{{"unused", unused, nn::TensorKind::Parameter},
                       {"a", a, nn::TensorKind::Parameter},
                       {"b", b, nn::TensorKind::Parameter},
                       {"c", c, nn::TensorKind::Parameter}};
  // At most 3 float64 values per bucket, last parameters first: {c, b}, {a}, {unused}.
  dist::GradientReducer reducer(params, dist::world(), dist::make_mpi_bucket_all_reduce(dist::world()), 24);
  EXPECT_EQ(reducer.buckets(), (Buckets{{3, 2}, {1}, {0}}));
  // loss = sum(a^2) * sum(b) + 3 c: a's gradient is 2a*sum(b), b's sum(a^2), c's 3.
  Tensor loss = ops::add(ops::mul(ops::sum(ops::mul(a, a)), ops::sum(b)), ops::mul(ops::sum(c), 3.0));
  reducer.backward(loss);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{8, 16, 24, 32}));
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{30, 30}));
  EXPECT_EQ(c.grad().to_vector<float>(), (std::vector<float>{3}));
  EXPECT_FALSE(unused.grad().defined());
  EXPECT_EQ(a.grad().dtype(), DType::Float32);
  // {c, b} and {a} start during backward; {unused} never gets a gradient and
  // starts when backward is over.
  EXPECT_EQ(reducer.last_stats().buckets, 3);
  EXPECT_EQ(reducer.last_stats().started_during_backward, 2);
}

namespace {

// R ranks' layout checks summed in float32, in rank order (what NCCL's
// float32 all-reduce computes; any order gives the same integers while
// every partial sum is exact).
std::vector<double> float32_sum(const std::vector<std::vector<double>>& per_rank) {
  std::vector<double> out(per_rank.at(0).size());
  for (size_t i = 0; i < out.size(); ++i) {
    float acc = 0;
    for (const auto& r : per_rank) acc += static_cast<float>(r.at(i));
    out[i] = acc;
  }
  return out;
}

// A float32 transport on the CPU for one process: the sum over one rank is
// the flat tensor itself, rounded to float32 as NCCL's would be.
class Float32OneRank : public dist::BucketAllReduce {
 public:
  DType dtype() const override { return DType::Float32; }
  Device device() const override { return Device::cpu(); }
  const char* name() const override { return "float32 (test)"; }
  void start(int bucket, Tensor flat) override {
    EXPECT_EQ(flat.dtype(), DType::Float32);
    started_[bucket] = flat;
  }
  Tensor finish(int bucket) override { return started_.at(bucket); }

 private:
  std::map<int, Tensor> started_;
};

}  // namespace

// The digits are as wide as the transport's exact integers allow for the
// number of ranks: R * (2^bits - 1)^2 fits the significand, one more bit
// would not (16 bits at most).
TEST(GradientReducer, LayoutDigitsFitTheTransportsExactIntegers) {
  for (DType dt : {DType::Float32, DType::Float64, DType::BFloat16}) {
    const int significand = dt == DType::Float64 ? 53 : dt == DType::Float32 ? 24 : 8;
    for (int ranks : {1, 2, 3, 8, 64, 256, 4096}) {
      if (dt == DType::BFloat16 && ranks > 256) continue;
      SCOPED_TRACE(std::string(dtype_name(dt)) + ", " + std::to_string(ranks) + " ranks");
      int bits = dist::layout_digit_bits(dt, ranks);
      ASSERT_GE(bits, 1);
      ASSERT_LE(bits, 16);
      double top = std::ldexp(1.0, bits) - 1, next = std::ldexp(1.0, bits + 1) - 1;
      EXPECT_LE(ranks * top * top, std::ldexp(1.0, significand));
      if (bits < 16) {
        EXPECT_GT(ranks * next * next, std::ldexp(1.0, significand));
      }
    }
  }
  // bfloat16 holds integers up to 256 exactly: not even a 1-bit digit's sum over 300 ranks.
  EXPECT_THROW(dist::layout_digit_bits(DType::BFloat16, 300), Error);
  EXPECT_THROW(dist::layout_digit_bits(DType::Int64, 2), Error);
  EXPECT_THROW(dist::layout_digit_bits(DType::Float32, 0), Error);
}

// AdvCL's ResNet-18 (width 64, 3 BN sets, 5 heads) with 25 MiB float32
// buckets: buckets of 5,530,902 and 6,326,080 values, whose squares float32
// cannot hold. Summed over 8 ranks in float32 the check is exact and agrees;
// a rank with another parameter list (one head fewer, or the same sizes in
// another order) is caught.
TEST(GradientReducer, LayoutCheckIsExactInFloat32AtResNet18BucketSizes) {
  // The parameter sizes of AdvCL's pretraining model (advcl/pretrain/
  // contrastive_model.h), in its order: the backbone's, then
  // fc_k (weight, bias) per pseudo-label granularity k, then head_proj's
  // 0.weight, 0.bias, 1.weight, 1.bias, 3.weight, 3.bias.
  auto bucket_sizes = [](const std::vector<int64_t>& pseudo_classes) {
    nn::ResNet18 backbone;
    const int64_t d = backbone.feature_dim();
    std::vector<int64_t> numels;
    for (const auto& p : backbone.named_parameters()) numels.push_back(p.tensor.numel());
    for (int64_t k : pseudo_classes) numels.insert(numels.end(), {d * k, k});
    numels.insert(numels.end(), {d * d, d, d, d, 128 * d, 128});
    std::vector<std::vector<int64_t>> sizes;
    for (const auto& b : dist::plan_buckets(numels, dist::GradientReducer::kDefaultBucketBytes / 4)) {
      sizes.emplace_back();
      for (size_t i : b) sizes.back().push_back(numels[i]);
    }
    return sizes;
  };
  auto total = [](const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); };
  std::vector<std::vector<int64_t>> advcl = bucket_sizes({2, 10, 50, 100, 500});
  ASSERT_EQ(advcl.size(), 2u);
  EXPECT_EQ(total(advcl[0]), 5530902);
  EXPECT_EQ(total(advcl[1]), 6326080);
  std::vector<std::vector<int64_t>> other = bucket_sizes({2, 10, 50, 100});
  ASSERT_EQ(other.size(), advcl.size());
  EXPECT_NE(other[0], advcl[0]);  // the heads' bucket (the last parameters) differs

  const int ranks = 8;
  const int bits = dist::layout_digit_bits(DType::Float32, ranks);
  for (size_t b = 0; b < advcl.size(); ++b) {
    SCOPED_TRACE("bucket " + std::to_string(b));
    std::vector<double> mine = dist::layout_check_values(advcl[b], bits);
    EXPECT_TRUE(dist::layout_check_agrees(float32_sum(std::vector<std::vector<double>>(ranks, mine)), mine, ranks));
    // One head fewer changes the heads' bucket; the backbone's may be the same.
    std::vector<std::vector<double>> mixed(ranks, mine);
    mixed[5] = dist::layout_check_values(other.at(b), bits);
    EXPECT_EQ(dist::layout_check_agrees(float32_sum(mixed), mine, ranks), other[b] == advcl[b]);
    std::vector<int64_t> reordered(advcl[b].rbegin(), advcl[b].rend());
    mixed[5] = dist::layout_check_values(reordered, bits);
    EXPECT_FALSE(dist::layout_check_agrees(float32_sum(mixed), mine, ranks));
    // The check as it was (the count and its square, in float32) fails even
    // when every rank agrees: the square is rounded.
    double n = static_cast<double>(total(advcl[b]));
    EXPECT_NE(float32_sum(std::vector<std::vector<double>>(ranks, {n * n}))[0], ranks * n * n);
  }
}

// Per digit, the sums of d and of d^2 together pin every rank's digit: the
// sums alone would pass three ranks with digits 1, 2, 3 from the middle one's
// point of view (1 + 2 + 3 = 3 * 2), the squares do not (1 + 4 + 9 != 3 * 4).
TEST(GradientReducer, LayoutCheckNeedsTheSquares) {
  std::vector<double> mine{2, 4};
  EXPECT_TRUE(dist::layout_check_agrees({6, 12}, mine, 3));
  EXPECT_FALSE(dist::layout_check_agrees({6, 14}, mine, 3));  // ranks 1, 2, 3
  EXPECT_FALSE(dist::layout_check_agrees({6}, mine, 3));      // a tail of another length
  // Different member sizes with the same total differ in the fingerprint.
  EXPECT_NE(dist::layout_check_values({3, 5}, 10), dist::layout_check_values({5, 3}, 10));
  EXPECT_NE(dist::layout_check_values({8}, 10), dist::layout_check_values({4, 4}, 10));
  EXPECT_EQ(dist::layout_check_values({4, 4}, 10), dist::layout_check_values({4, 4}, 10));
  for (double v : dist::layout_check_values({6326080, 5530902}, 10)) EXPECT_LE(v, 1023.0 * 1023.0);
}

// The whole reducer through a float32 transport at the real bucket sizes:
// the layout check passes and every gradient comes back (a sum over one rank).
TEST(GradientReducer, Float32TransportCarriesResNet18Buckets) {
  nn::ResNet18 model;
  nn::StateDict params = model.named_parameters();
  int64_t k = 0;
  for (auto& p : params) {
    // Small integers: exact in float32 whatever the rounding of a sum.
    std::vector<float> g(static_cast<size_t>(p.tensor.numel()));
    for (float& v : g) v = static_cast<float>(k++ % 13 - 6);
    Tensor(p.tensor).set_grad(Tensor::from_vector<float>(g, p.tensor.shape()));
  }
  dist::GradientReducer reducer(params, dist::world(), std::make_unique<Float32OneRank>());
  ASSERT_EQ(reducer.buckets().size(), 2u);
  reducer.average_held_gradients();
  k = 0;
  for (auto& p : params) {
    std::vector<float> g = p.tensor.grad().to_vector<float>();
    bool same = true;
    for (float v : g) same = same && v == static_cast<float>(k++ % 13 - 6);
    EXPECT_TRUE(same) << p.name;
  }
}
