// Evaluation data-parallel (advcl eval and finetune's per-epoch SA/RA under
// mpirun): each rank attacks its shard of the test set (shard_eval_loader)
// and the summed counts equal one process's counts over the whole set, for
// PGD, no attack and AutoAttack. 19 images in global batches of 5: the
// ranks' shards are unequal and some ranks get empty batches at the end.
#include <gtest/gtest.h>

#include "advcl/attacks/autoattack.h"
#include "advcl/step/data_parallel.h"
#include "advcl/attacks/evaluate.h"
#include "advcl/finetune/finetune_model.h"
#include "mpi_test_util.h"
#include "tests/tiny_data.h"

using namespace advcl;

namespace {

constexpr int64_t kN = 19, kBatch = 5, kClasses = 4;  // AutoAttack's DLR-T loss needs 4 classes

struct EvalSetup {
  std::shared_ptr<const data::ImageDataset> ds = test::tiny_images(kN, kClasses, 2);
  method::FinetuneModel model{std::make_unique<nn::ResNet18>(test::tiny_encoder()), kClasses, 9};
  method::LogitsFn logits = [this](const Tensor& x) { return model.logits(x); };
  EvalSetup() { model.eval(); }
  // A test loader over `comm`'s ranks, as advcl eval builds it.
  std::unique_ptr<data::BatchLoader> loader(dist::Communicator& comm) {
    data::LoaderOptions lo;
    lo.batch_size = kBatch;
    lo.workers = 0;
    return std::make_unique<data::BatchLoader>(ds, std::make_shared<data::ToFloat>(), cli::shard_eval_loader(lo, comm));
  }
};

void expect_counts_eq(const method::EvalCounts& got, const method::EvalCounts& want) {
  EXPECT_EQ(got.n, want.n);
  EXPECT_EQ(got.clean, want.clean);
  EXPECT_EQ(got.robust, want.robust);
}

}  // namespace

TEST(DataParallelEval, PgdCountsSummedOverRanksEqualOneProcess) {
  dist::Communicator& comm = dist::world();
  dist::Communicator one;
  EvalSetup s;
  for (int steps : {0, 5}) {
    SCOPED_TRACE("PGD steps " + std::to_string(steps));
    method::EvalOptions opt;
    opt.steps = steps;
    opt.epsilon = 32.0 / 255;  // large enough that the attack breaks points of this random model
    opt.step = 8.0 / 255;
    opt.seed = 4;
    method::EvalCounts want = method::evaluate_pgd(s.logits, *s.loader(one), opt);
    method::EvalCounts mine = method::evaluate_pgd(s.logits, *s.loader(comm), opt);
    EXPECT_LT(mine.n, kN) << "each rank sees only its shard";
    method::EvalCounts got = method::sum_over_ranks(mine, comm);
    ASSERT_EQ(want.n, kN);
    expect_counts_eq(got, want);
    if (steps > 0) {
      EXPECT_LT(want.robust, want.clean) << "the attack must matter for the test to mean something";
    }
    EXPECT_GT(want.clean, 0);
  }
}

TEST(DataParallelEval, AutoAttackCountsSummedOverRanksEqualOneProcess) {
  dist::Communicator& comm = dist::world();
  dist::Communicator one;
  EvalSetup s;
  autoattack::AutoAttackOptions ao;
  ao.epsilon = 32.0 / 255;
  ao.seed = 4;
  ao.batch_size = 3;
  ao.apgd_iterations = 4;
  ao.fab_iterations = 4;
  ao.target_classes = 3;
  ao.square_queries = 10;
  method::AutoAttackCounts want = method::evaluate_autoattack(s.logits, *s.loader(one), ao, Device::cpu(), {}, one);
  method::AutoAttackCounts got = method::evaluate_autoattack(s.logits, *s.loader(comm), ao, Device::cpu(), {}, comm);
  ASSERT_EQ(want.counts.n, kN);
  expect_counts_eq(got.counts, want.counts);
  ASSERT_EQ(got.broken.size(), ao.attacks.size());
  ASSERT_EQ(want.broken.size(), ao.attacks.size());
  int64_t broken = 0;
  for (size_t i = 0; i < ao.attacks.size(); ++i) {
    EXPECT_EQ(got.broken[i].first, ao.attacks[i]);
    EXPECT_EQ(got.broken[i].second, want.broken[i].second) << ao.attacks[i];
    broken += want.broken[i].second;
  }
  EXPECT_EQ(want.counts.clean - broken, want.counts.robust);
  EXPECT_GT(broken, 0) << "the attack must matter for the test to mean something";
}
