// nn/parallel/ in a world of one process (the main suite runs without mpirun):
// every collective must be an exact no-op, so single-process training goes
// through the same code path unchanged. The multi-rank proofs are in tests/mpi/.
#include <gtest/gtest.h>

#include "nn/parallel/all_gather.h"
#include "nn/parallel/communicator.h"
#include "nn/parallel/consistency.h"
#include "nn/parallel/gradient_sync.h"
#include "nn/parallel/sync_batch_norm.h"
#include "engine/ops.h"
#include "nn/batch_norm.h"

using namespace advcl;

namespace {
Tensor randn(const Shape& s, uint32_t step) { return ops::rand_normal(s, RngKey{7, 100, step, 0}); }
}  // namespace

TEST(DistSingle, WorldOfOneByDefault) {
  dist::Communicator c;
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.size(), 1);
  EXPECT_EQ(c.local_rank(), 0);
  EXPECT_TRUE(c.is_root());
  EXPECT_FALSE(c.distributed());
}

TEST(DistSingle, CollectivesAreIdentity) {
  dist::Communicator c;
  std::vector<double> d{1.5, -2};
  c.all_reduce(d.data(), 2, dist::ReduceOp::Sum, "test");
  EXPECT_EQ(d, (std::vector<double>{1.5, -2}));
  Tensor t = Tensor::from_vector<float>({1, 2, 3}, {3});
  c.all_reduce_mean(t, "test");
  c.broadcast(t, 0, "test");
  c.barrier("test");
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_THROW(c.broadcast(t, 1, "test"), Error);
  Tensor i = Tensor::from_vector<int64_t>({4}, {1});
  EXPECT_THROW(c.all_reduce_mean(i, "test"), Error);
}

TEST(DistSingle, TimeoutMustBePositive) {
  dist::Communicator c;
  EXPECT_THROW(c.set_timeout(0), Error);
  c.set_timeout(2.5, dist::OnTimeout::Throw);
  EXPECT_EQ(c.timeout_s(), 2.5);
}

TEST(DistSingle, AverageGradientsKeepsGradients) {
  dist::Communicator c;
  Tensor w = randn({3, 2}, 1).set_requires_grad();
  Tensor g = randn({3, 2}, 2);
  w.set_grad(g.clone());
  Tensor none = randn({2}, 3).set_requires_grad();
  nn::StateDict params{{"w", w, nn::TensorKind::Parameter}, {"none", none, nn::TensorKind::Parameter}};
  dist::average_gradients(params, c);
  EXPECT_EQ(w.grad().to_vector<float>(), g.to_vector<float>());
  EXPECT_FALSE(none.grad().defined());
  EXPECT_EQ(dist::local_loss_scale(5, c), 1.0);
}

TEST(DistSingle, ConsistentWithItself) {
  dist::Communicator c;
  nn::StateDict t{{"a", randn({4}, 4), nn::TensorKind::Buffer}};
  EXPECT_TRUE(dist::compare_across_ranks(t, c).consistent);
  EXPECT_NO_THROW(dist::check_consistent(t, "in a test", c));
}

// With one rank the synchronised hooks see only local sums: the layer must
// match an unsynchronised one exactly, output and gradients alike.
TEST(DistSingle, SyncBatchNormOfOneRankIsPlainBatchNorm) {
  nn::BatchNormOptions plain_opt, sync_opt;
  plain_opt.num_sets = sync_opt.num_sets = 2;
  sync_opt.sync = dist::make_batch_norm_sync();
  nn::BatchNorm plain(3, plain_opt), synced(3, sync_opt);
  Tensor x = randn({8, 3, 2, 2}, 5);
  Tensor xa = x.clone().set_requires_grad(), xb = x.clone().set_requires_grad();
  Tensor ya = plain.forward(xa, {0, 1}), yb = synced.forward(xb, {0, 1});
  EXPECT_EQ(ya.to_vector<float>(), yb.to_vector<float>());
  Tensor up = randn({8, 3, 2, 2}, 6);
  backward(ops::sum(ops::mul(ya, up)));
  backward(ops::sum(ops::mul(yb, up)));
  EXPECT_EQ(xa.grad().to_vector<float>(), xb.grad().to_vector<float>());
  EXPECT_EQ(plain.set(1).weight.grad().to_vector<float>(), synced.set(1).weight.grad().to_vector<float>());
  EXPECT_EQ(plain.set(0).running_var.to_vector<float>(), synced.set(0).running_var.to_vector<float>());
}

TEST(DistSingle, AllGatherOfOneRankIsIdentity) {
  dist::Communicator c;
  Tensor x = randn({3, 2}, 7).set_requires_grad();
  Tensor y = dist::all_gather_rows(x, c);
  EXPECT_EQ(y.to_vector<float>(), x.to_vector<float>());
  Tensor up = randn({3, 2}, 8);
  backward(ops::sum(ops::mul(y, up)));
  EXPECT_EQ(x.grad().to_vector<float>(), up.to_vector<float>());
  EXPECT_THROW(dist::all_gather_rows(Tensor::scalar(1.0), c), Error);
}
