// Finetuning data-parallel (advcl finetune under mpirun): SLF, ALF and AFF
// steps on N ranks, each with its share of the global batch, train exactly
// as one process with the whole batch: classifier and encoder weights, BN
// running statistics (AFF trains the encoder in train mode with
// synchronised BN) and the logged values. Shards are unequal for B = 7 on 2
// and 3 ranks, as a last batch is. float64, so that the attacks' gradient
// signs cannot flip on rounding.
//
// Also the loader side the stages share (advcl/step/data_parallel.h): the
// ranks' shards of each global batch are the one-rank batch in order, and
// global_batch_offset says where each shard starts.
#include <gtest/gtest.h>

#include "advcl/step/data_parallel.h"
#include "advcl/finetune/finetune.h"
#include "nn/parallel/all_gather.h"
#include "nn/parallel/consistency.h"
#include "nn/parallel/sync_batch_norm.h"
#include "engine/ops.h"
#include "mpi_test_util.h"
#include "tests/tiny_data.h"

using namespace advcl;
using advcl::test::shard;

namespace {

constexpr int64_t kClasses = 3;

method::FinetuneModel tiny_model(std::shared_ptr<const nn::BatchNormSync> sync) {
  return method::FinetuneModel(std::make_unique<nn::ResNet18>(test::tiny_encoder(std::move(sync))), kClasses, 6);
}

// What the mode trains: the classifier (SLF, ALF) or everything (AFF), as cmd_finetune.
nn::StateDict trained(method::FinetuneModel& m, method::FinetuneMode mode) {
  return mode == method::FinetuneMode::Aff ? m.named_parameters() : m.classifier.named_parameters();
}

void expect_mode_matches_one_rank(method::FinetuneMode mode, int64_t B) {
  dist::Communicator& comm = dist::world();
  auto mine = shard(B, comm.rank(), comm.size());
  const bool aff = mode == method::FinetuneMode::Aff;
  method::FinetuneModel one = tiny_model(nullptr);
  method::FinetuneModel many = tiny_model(aff ? dist::make_batch_norm_sync() : nullptr);
  one.to(DType::Float64);
  many.to(DType::Float64);
  one.eval();
  many.eval();
  nn::Sgd sgd_one(trained(one, mode), {0.1, 0.9, 2e-4}), sgd_many(trained(many, mode), {0.1, 0.9, 2e-4});
  method::FinetuneStepOptions opt;
  opt.mode = mode;
  opt.attack_steps = 3;
  method::StepContext ctx(sgd_many.params(), comm);
  for (uint32_t s = 0; s < 3; ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    Tensor x = ops::rand_uniform({B, 1, 8, 8}, RngKey{8, 300, s, 0}, 0, 1, DType::Float64);
    Tensor y = ops::rand_int({B}, RngKey{8, 301, s, 0}, 0, kClasses);
    RngKey key{8, static_cast<uint32_t>(RngPurpose::AttackStart), s, 0};
    std::map<std::string, double> want = method::read_values(method::finetune_step(one, sgd_one, x, y, opt, key));
    RngKey my_key = key;
    my_key.sample = static_cast<uint32_t>(mine.first);  // this shard's position in the global batch
    std::map<std::string, double> got = method::read_values(
        method::finetune_step(many, sgd_many, ops::slice(x, mine.first, mine.second),
                              ops::slice(y, mine.first, mine.second), opt, my_key, ctx));
    ASSERT_EQ(got.size(), want.size());
    for (auto& [k, v] : want) EXPECT_NEAR(got.at(k), v, 1e-9 * (1 + std::fabs(v))) << k;
  }
  // Classifier and encoder weights, BN affine parameters, running mean/var
  // and num_batches_tracked.
  test::expect_state_near(many.state_dict(), one.state_dict(), 1e-9, 1e-7);
  EXPECT_NO_THROW(dist::check_consistent(many.state_dict(), "after the finetuning steps"));
}

// Every rank's `values` (in rank order), as one tensor on every rank.
std::vector<int64_t> gather(const std::vector<int64_t>& values) {
  std::vector<double> d(values.begin(), values.end());
  Tensor t = dist::all_gather_rows(Tensor::from_vector<double>(d, {static_cast<int64_t>(d.size())}));
  std::vector<int64_t> out;
  for (double v : t.to_vector<double>()) out.push_back(static_cast<int64_t>(v));
  return out;
}

}  // namespace

TEST(DataParallelFinetune, SlfMatchesOneRank) {
  for (int64_t B : {6, 7}) {
    SCOPED_TRACE("batch " + std::to_string(B));
    expect_mode_matches_one_rank(method::FinetuneMode::Slf, B);
  }
}

TEST(DataParallelFinetune, AlfMatchesOneRank) {
  for (int64_t B : {6, 7}) {
    SCOPED_TRACE("batch " + std::to_string(B));
    expect_mode_matches_one_rank(method::FinetuneMode::Alf, B);
  }
}

TEST(DataParallelFinetune, AffWithSyncBatchNormMatchesOneRank) {
  for (int64_t B : {6, 7}) {
    SCOPED_TRACE("batch " + std::to_string(B));
    expect_mode_matches_one_rank(method::FinetuneMode::Aff, B);
  }
}

// The training loader of a stage under mpirun: each global batch's shards,
// in rank order, are the one-rank loader's batch (same seed, same epoch
// order), and each shard's global_batch_offset is where it starts in it.
TEST(DataParallelFinetune, ShardedTrainingLoaderSplitsTheOneRankBatches) {
  dist::Communicator& comm = dist::world();
  dist::Communicator one;  // a group of one: the one-process loader
  for (int64_t n : {23, 25}) {  // 25 % 6 = 1 image: fewer than the ranks, that last batch is dropped
    SCOPED_TRACE("n " + std::to_string(n));
    auto ds = test::tiny_images(n, kClasses, 1);
    data::LoaderOptions lo;
    lo.batch_size = 6;
    lo.seed = 3;
    lo.workers = 0;
    data::BatchLoader whole(ds, std::make_shared<data::ToFloat>(), cli::shard_training_loader(lo, n, "--batch-size", one));
    data::BatchLoader part(ds, std::make_shared<data::ToFloat>(), cli::shard_training_loader(lo, n, "--batch-size", comm));
    EXPECT_EQ(part.options().batch_size, 6 / comm.size());
    EXPECT_EQ(part.batches_per_epoch(), n == 23 ? whole.batches_per_epoch() : whole.batches_per_epoch() - 1);
    for (int epoch = 0; epoch < 2; ++epoch) {
      data::Batch wb, pb;
      while (part.next(pb)) {
        ASSERT_TRUE(whole.next(wb));
        std::vector<int64_t> want = wb.indices.to_vector<int64_t>();
        EXPECT_EQ(gather(pb.indices.to_vector<int64_t>()), want) << "epoch " << epoch << " batch " << pb.index;
        // Where this shard starts in the global batch.
        int64_t offset = cli::global_batch_offset(part, pb);
        ASSERT_GE(offset, 0);
        ASSERT_LE(offset + pb.size(), static_cast<int64_t>(want.size()));
        for (int64_t i = 0; i < pb.size(); ++i)
          EXPECT_EQ(pb.indices.to_vector<int64_t>()[i], want[offset + i]) << "batch " << pb.index;
      }
      if (n == 25) whole.set_state({epoch + 1, 0});  // skip the one-image batch the ranks drop
      else EXPECT_FALSE(whole.next(wb));
    }
  }
  data::LoaderOptions odd;
  odd.batch_size = 7;  // divisible by neither 2 nor 3 ranks
  EXPECT_THROW(cli::shard_training_loader(odd, 10, "--batch-size", comm), Error);
}
