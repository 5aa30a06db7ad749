// The contrastive loss over the global batch: with every view's features
// gathered across ranks (dist::all_gather_rows), N ranks holding unequal
// shards compute the one-rank SupCon loss of the whole batch, and after
// average_gradients the one-rank parameter gradients; each rank's input
// gradient is world-size times its rows of the one-rank input gradient (the
// scale average_gradients divides out). This is the building block that
// makes a whole AdvCL step data-parallel (docs/distributed.md).
#include <gtest/gtest.h>

#include "advcl/pretrain/losses.h"
#include "nn/parallel/all_gather.h"
#include "nn/parallel/gradient_sync.h"
#include "engine/ops.h"
#include "mpi_test_util.h"
#include "nn/layers.h"

using namespace advcl;
using advcl::test::shard;

TEST(DataParallel, GatheredSupConMatchesOneRank) {
  dist::Communicator& comm = dist::world();
  const int64_t B = 7;
  auto rows = shard(B, comm.rank(), comm.size());
  nn::Linear one(3, 5), many(3, 5);
  one.init_parameters(21);
  many.init_parameters(21);
  std::vector<Tensor> x_all, x_one, x_many;
  for (uint32_t v = 0; v < 2; ++v) {
    x_all.push_back(ops::rand_normal({B, 3}, RngKey{5, 100, v, 0}));
    x_one.push_back(x_all[v].clone().set_requires_grad());
    x_many.push_back(ops::slice(x_all[v], rows.first, rows.second).set_requires_grad());
  }
  Tensor want = method::supcon_loss({ops::l2_normalize(one.forward(x_one[0])), ops::l2_normalize(one.forward(x_one[1]))});
  backward(want);
  std::vector<Tensor> gathered;
  for (int v = 0; v < 2; ++v) gathered.push_back(dist::all_gather_rows(ops::l2_normalize(many.forward(x_many[v]))));
  ASSERT_EQ(gathered[0].size(0), B);
  Tensor got = method::supcon_loss(gathered);
  backward(got);
  dist::average_gradients(many.named_parameters());

  EXPECT_NEAR(got.item(), want.item(), 1e-5 * (1 + std::fabs(want.item())));
  nn::StateDict g, w;
  for (int v = 0; v < 2; ++v) {
    std::string name = "input" + std::to_string(v);
    g.push_back({name, ops::div(x_many[v].grad(), comm.size()), nn::TensorKind::Buffer});
    w.push_back({name, ops::slice(x_one[v].grad(), rows.first, rows.second), nn::TensorKind::Buffer});
  }
  for (auto& p : many.named_parameters()) g.push_back({p.name, p.tensor.grad(), p.kind});
  for (auto& p : one.named_parameters()) w.push_back({p.name, p.tensor.grad(), p.kind});
  test::expect_state_near(g, w, 1e-6, 1e-4);
}
