// The bucket plan of the gradient reducer, and its one-process behaviour
// (the multi-rank behaviour is tested under mpirun: tests_mpi/equivalence_test.cpp).
#include <gtest/gtest.h>

#include "dist/gradient_reducer.h"
#include "dist/nccl_all_reduce.h"
#include "engine/ops.h"

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
