// A whole AdvCL step (joint PGD, per-view BN sets, SupCon + pseudo-label CE,
// SGD) data-parallel on N ranks with unequal shards equals the one-rank step
// on the whole batch: synchronised BN everywhere, projections gathered for
// SupCon, the CE scaled by local_loss_scale, gradients averaged before the
// step. float64, so that the attacks' gradient signs cannot flip on rounding.
#include <gtest/gtest.h>

#include "advcl/pretrain/advcl_step.h"
#include "advcl/pretrain/contrastive_model.h"
#include "engine/ops.h"
#include "mpi_test_util.h"
#include "nn/parallel/all_gather.h"
#include "nn/parallel/consistency.h"
#include "nn/parallel/gradient_reducer.h"
#include "nn/parallel/gradient_sync.h"
#include "nn/parallel/sync_batch_norm.h"

using namespace advcl;
using advcl::test::shard;

namespace {

method::ContrastiveModelOptions tiny_resnet(std::shared_ptr<const nn::BatchNormSync> sync) {
  method::ContrastiveModelOptions mo;
  mo.backbone.width = 2;
  mo.backbone.seed = 4;
  mo.backbone.bn_sync = std::move(sync);
  mo.proj_dim = 8;
  mo.pseudo_classes = {2, 3};
  return mo;
}

Tensor rows(const Tensor& x, std::pair<int64_t, int64_t> r) { return ops::slice(x, r.first, r.second); }

}  // namespace

TEST(DataParallel, AdvclStepMatchesOneRank) {
  dist::Communicator& comm = dist::world();
  const int64_t B = 5;
  auto mine = shard(B, comm.rank(), comm.size());
  method::ContrastiveModel one(tiny_resnet(nullptr)), many(tiny_resnet(dist::make_batch_norm_sync()));
  one.to(DType::Float64);
  many.to(DType::Float64);
  nn::Sgd sgd_one(one.named_parameters(), {0.1, 0.9, 1e-4}), sgd_many(many.named_parameters(), {0.1, 0.9, 1e-4});
  method::AdvclStepOptions opt;
  opt.radius = 2;  // 8x8 images
  // The step context of `advcl pretrain`: gradients averaged in buckets
  // during backward (a small bucket size so that the tiny model still has several).
  method::StepContext ctx(many.named_parameters(), dist::world(), 4096);

  for (uint32_t s = 0; s < 2; ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    auto img = [&](uint32_t v) { return ops::rand_uniform({B, 3, 8, 8}, RngKey{6, 100 + v, s, 0}, 0, 1, DType::Float64); };
    method::AdvclBatch all{img(0), img(1), img(2), {}};
    for (int64_t k : {2, 3}) all.pseudo.push_back(ops::rand_int({B}, RngKey{6, 200 + static_cast<uint32_t>(k), s, 0}, 0, k));
    std::vector<Tensor> starts = method::advcl_attack_starts(all.x_org, opt, RngKey{6, 0, s, 0});
    method::AdvclStepResult want = method::advcl_step(one, sgd_one, all, starts, opt);

    method::AdvclBatch part{rows(all.x1, mine), rows(all.x2, mine), rows(all.x_org, mine), {}};
    for (auto& p : all.pseudo) part.pseudo.push_back(rows(p, mine));
    method::AdvclStepResult got =
        method::advcl_step(many, sgd_many, part, {rows(starts[0], mine), rows(starts[1], mine)}, opt, ctx);

    EXPECT_NEAR(got.contrastive.item(), want.contrastive.item(), 1e-9 * (1 + std::fabs(want.contrastive.item())));
    // The logged CE and loss are the whole batch's on every rank.
    EXPECT_NEAR(got.ce.item(), want.ce.item(), 1e-9 * (1 + std::fabs(want.ce.item())));
    EXPECT_NEAR(got.loss.item(), want.loss.item(), 1e-9 * (1 + std::fabs(want.loss.item())));
    test::expect_state_near({{"x_cl", got.x_cl, nn::TensorKind::Buffer}, {"x_ce", got.x_ce, nn::TensorKind::Buffer}},
                            {{"x_cl", rows(want.x_cl, mine), nn::TensorKind::Buffer},
                             {"x_ce", rows(want.x_ce, mine), nn::TensorKind::Buffer}},
                            1e-9, 1e-9);
  }
  // Weights, BN affine parameters and running statistics of all three sets.
  test::expect_state_near(many.state_dict(), one.state_dict(), 1e-9, 1e-7);
  EXPECT_NO_THROW(dist::check_consistent(many.state_dict(), "after the AdvCL steps"));
}
