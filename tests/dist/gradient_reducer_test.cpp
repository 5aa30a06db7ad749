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
