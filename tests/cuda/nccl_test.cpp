// The NCCL transport of the gradient reducer on one GPU (one rank): the
// reducer's buckets go through ncclAllReduce on the transport's stream and
// come back unchanged (a sum over one rank), so every gradient equals a plain
// backward's. Skips without CUDA, NCCL or a GPU. Several ranks need several
// GPUs: `mpirun -np N advcl pretrain --device cuda` (docs/distributed.md).
#include <gtest/gtest.h>

#include "cuda/runtime.h"
#include "nn/parallel/gradient_reducer.h"
#include "nn/parallel/nccl_all_reduce.h"
#include "engine/ops.h"

using namespace advcl;

TEST(NcclTransport, OneRankBucketsEqualAPlainBackward) {
  if (!dist::nccl_available()) GTEST_SKIP() << "built without NCCL";
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const Device gpu = Device::cuda(0);
  auto make = [&](uint32_t what, Shape s) {
    return ops::rand_normal(s, RngKey{5, 900 + what, 0, 0}).to(gpu).set_requires_grad();
  };
  Tensor w1 = make(0, {64, 32}), w2 = make(1, {32, 10}), x = make(2, {16, 64}).detach();
  auto loss_of = [&](const Tensor& a, const Tensor& b) {
    return ops::mean(ops::pow(ops::matmul(ops::relu(ops::matmul(x, a)), b), 2));
  };
  nn::StateDict params{{"w1", w1, nn::TensorKind::Parameter}, {"w2", w2, nn::TensorKind::Parameter}};
  // 4 KiB buckets: w2 (1,280 B) and w1 (8,192 B) travel separately.
  dist::GradientReducer reducer(params, dist::world(), dist::make_nccl_bucket_all_reduce(dist::world(), gpu), 4096);
  ASSERT_EQ(reducer.buckets().size(), 2u);
  reducer.backward(loss_of(w1, w2));
  EXPECT_EQ(reducer.last_stats().started_during_backward, 2);

  Tensor v1 = w1.detach().clone().set_requires_grad(), v2 = w2.detach().clone().set_requires_grad();
  backward(loss_of(v1, v2));
  EXPECT_EQ(w1.grad().device(), gpu);
  EXPECT_EQ(w1.grad().to(Device::cpu()).to_vector<float>(), v1.grad().to(Device::cpu()).to_vector<float>());
  EXPECT_EQ(w2.grad().to(Device::cpu()).to_vector<float>(), v2.grad().to(Device::cpu()).to_vector<float>());
}
