// N ranks with a per-rank share of the batch must train exactly as one rank
// with the whole batch (float32 tolerance): same weights, same running
// statistics, same losses after k SGD steps (momentum and weight decay on).
// Each rank also trains the one-rank reference itself on the whole batch, so
// the comparison needs no extra communication. Run with -np 2 and -np 3:
// with B = 7 the shards are unequal (4/3 and 3/2/2), as a last batch is.
#include <gtest/gtest.h>

#include <memory>

#include "nn/parallel/consistency.h"
#include "nn/parallel/gradient_reducer.h"
#include "nn/parallel/gradient_sync.h"
#include "nn/parallel/sync_batch_norm.h"
#include "engine/ops.h"
#include "mpi_test_util.h"
#include "nn/batch_norm.h"
#include "nn/layers.h"
#include "nn/sgd.h"

using namespace advcl;
using advcl::test::shard;

namespace {

constexpr int kSteps = 3;
const nn::SgdOptions kSgd{0.1, 0.9, 5e-4};

Tensor randn(const Shape& s, uint32_t step, uint32_t what) { return ops::rand_normal(s, RngKey{3, 100 + what, step, 0}); }

// Per-sample squared error summed over outputs, averaged over the rows.
Tensor mse(const Tensor& y, const Tensor& target) { return ops::mean(ops::sum(ops::pow(ops::sub(y, target), 2), 1)); }

// conv -> ReLU -> global pool -> linear: no batch norm.
class PlainNet : public nn::Module {
 public:
  PlainNet() {
    register_module("conv", conv);
    register_module("fc", fc);
    init_parameters(11);
  }
  Tensor forward(const Tensor& x) { return fc.forward(nn::global_avg_pool(nn::relu(conv.forward(x)))); }
  nn::Conv2d conv{2, 3, 3, 1, 1};
  nn::Linear fc{3, 4};
};

// conv -> BN2d with two statistic sets, one per view -> ReLU -> pool ->
// linear -> BN1d: every BN of the model synchronised when `sync` is set.
class BnNet : public nn::Module {
 public:
  explicit BnNet(std::shared_ptr<const nn::BatchNormSync> sync)
      : bn2d(3, {2, 0.1, 1e-5, 0, sync}), bn1d(4, {1, 0.1, 1e-5, 0, sync}) {
    register_module("conv", conv);
    register_module("bn2d", bn2d);
    register_module("fc", fc);
    register_module("bn1d", bn1d);
    init_parameters(12);
  }
  // x: two views stacked, view 0 normalised with set 0 and view 1 with set 1.
  Tensor forward(const Tensor& x) {
    Tensor h = nn::global_avg_pool(nn::relu(bn2d.forward(conv.forward(x), {0, 1})));
    return bn1d.forward(fc.forward(h), 0);
  }
  nn::Conv2d conv{2, 3, 3, 1, 1};
  nn::BatchNorm bn2d;
  nn::Linear fc{3, 4};
  nn::BatchNorm bn1d;
};

// Rows [r.first, r.second) of each of the `views` views stacked in x ([views*B, ...]).
Tensor rows_of_views(const Tensor& x, int views, std::pair<int64_t, int64_t> r) {
  int64_t B = x.size(0) / views;
  std::vector<Tensor> parts;
  for (int v = 0; v < views; ++v) parts.push_back(ops::slice(x, v * B + r.first, v * B + r.second));
  return ops::cat(parts);
}

// How the ranks' gradients are averaged: one all-reduce after backward, or
// in buckets overlapped with backward (the tiny bucket size makes several).
enum class Sync { None, AfterBackward, Buckets };

// k steps on a fresh batch each; `rows`: this process's share (all rows for
// the reference). Returns the whole batch's loss of each step.
template <class Net>
std::vector<double> train(Net& net, int64_t B, int views, std::pair<int64_t, int64_t> rows, Sync sync) {
  bool distributed = sync != Sync::None;
  nn::Sgd sgd(net.named_parameters(), kSgd);
  dist::Communicator& comm = dist::world();
  dist::GradientReducer reducer(net.named_parameters(), comm, nullptr, 64);
  if (sync == Sync::Buckets) {
    EXPECT_GT(reducer.buckets().size(), 1u);
  }
  std::vector<double> losses;
  for (int s = 0; s < kSteps; ++s) {
    Tensor x = rows_of_views(randn({views * B, 2, 4, 4}, s, 0), views, rows);
    Tensor target = rows_of_views(randn({views * B, 4}, s, 1), views, rows);
    sgd.zero_grad();
    Tensor y = net.forward(x);
    Tensor loss = mse(y, target);
    int64_t n = rows.second - rows.first;
    double scale = distributed ? dist::local_loss_scale(n, comm) : 1.0;
    if (sync == Sync::Buckets) {
      reducer.backward(ops::mul(loss, scale));
      // Every bucket but the first layers' started before backward ended.
      if (comm.distributed()) {
        EXPECT_GE(reducer.last_stats().started_during_backward, 1);
      }
    } else {
      backward(ops::mul(loss, scale));
      if (distributed) dist::average_gradients(net.named_parameters(), comm);
    }
    sgd.step();
    // The whole batch's loss: the count-weighted mean of the ranks' means.
    double weighted[2] = {loss.item() * static_cast<double>(n), static_cast<double>(n)};
    if (distributed) comm.all_reduce(weighted, 2, dist::ReduceOp::Sum, "test loss");
    losses.push_back(weighted[0] / weighted[1]);
  }
  return losses;
}

void expect_losses_near(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t s = 0; s < got.size(); ++s) EXPECT_NEAR(got[s], want[s], 1e-5 * (1 + std::fabs(want[s]))) << "step " << s;
}

}  // namespace

TEST(DataParallel, PlainLayersMatchOneRank) {
  dist::Communicator& comm = dist::world();
  for (int64_t B : {6, 7}) {  // 7: unequal shards
    SCOPED_TRACE("batch " + std::to_string(B));
    PlainNet one, many;
    std::vector<double> want = train(one, B, 1, {0, B}, Sync::None);
    std::vector<double> got = train(many, B, 1, shard(B, comm.rank(), comm.size()), Sync::AfterBackward);
    expect_losses_near(got, want);
    test::expect_state_near(many.state_dict(), one.state_dict());
    EXPECT_NO_THROW(dist::check_consistent(many.state_dict(), "after the plain-layer steps"));
  }
}

TEST(DataParallel, SyncBatchNormMatchesOneRankWithUnequalShards) {
  dist::Communicator& comm = dist::world();
  const int64_t B = 7;
  BnNet one(nullptr), many(dist::make_batch_norm_sync());
  std::vector<double> want = train(one, B, 2, {0, B}, Sync::None);
  std::vector<double> got = train(many, B, 2, shard(B, comm.rank(), comm.size()), Sync::AfterBackward);
  expect_losses_near(got, want);
  // Weights, BN affine parameters, running mean/var (unbiased over the
  // global count) and num_batches_tracked of both statistic sets.
  test::expect_state_near(many.state_dict(), one.state_dict());
  EXPECT_NO_THROW(dist::check_consistent(many.state_dict(), "after the synchronised-BN steps"));
}

// One forward/backward without an optimiser: the input gradient of this
// rank's rows and each parameter's averaged gradient equal the one-rank
// gradients (the loss scale makes every rank's upstream gradient
// world-size times the whole batch's; the average divides it out).
TEST(DataParallel, SyncBatchNormGradientsMatchOneRank) {
  dist::Communicator& comm = dist::world();
  const int64_t B = 7;
  auto rows = shard(B, comm.rank(), comm.size());
  BnNet one(nullptr), many(dist::make_batch_norm_sync());
  Tensor x_all = randn({2 * B, 2, 4, 4}, 9, 0), t_all = randn({2 * B, 4}, 9, 1);
  Tensor x1 = x_all.clone().set_requires_grad();
  backward(mse(one.forward(x1), t_all));
  Tensor xn = rows_of_views(x_all, 2, rows).clone().set_requires_grad();
  int64_t n = rows.second - rows.first;
  backward(ops::mul(mse(many.forward(xn), rows_of_views(t_all, 2, rows)), dist::local_loss_scale(n)));
  dist::average_gradients(many.named_parameters());
  // Input gradient: this rank's gradient is world-size times its rows' share.
  Tensor want_x = rows_of_views(x1.grad(), 2, rows);
  test::expect_state_near({{"input", ops::div(xn.grad(), comm.size()), nn::TensorKind::Buffer}},
                          {{"input", want_x, nn::TensorKind::Buffer}}, 1e-6, 1e-4);
  nn::StateDict got, want;
  for (auto& p : many.named_parameters()) got.push_back({p.name, p.tensor.grad(), p.kind});
  for (auto& p : one.named_parameters()) want.push_back({p.name, p.tensor.grad(), p.kind});
  test::expect_state_near(got, want, 1e-6, 1e-4);
}

// The bucketed reducer, overlapped with backward, trains as one rank too
// (synchronised BN, unequal shards) and agrees with the one-shot average.
TEST(DataParallel, BucketedGradientReducerMatchesOneRank) {
  dist::Communicator& comm = dist::world();
  const int64_t B = 7;
  BnNet one(nullptr), bucketed(dist::make_batch_norm_sync()), oneshot(dist::make_batch_norm_sync());
  auto rows = shard(B, comm.rank(), comm.size());
  std::vector<double> want = train(one, B, 2, {0, B}, Sync::None);
  std::vector<double> got = train(bucketed, B, 2, rows, Sync::Buckets);
  std::vector<double> got_oneshot = train(oneshot, B, 2, rows, Sync::AfterBackward);
  expect_losses_near(got, want);
  test::expect_state_near(bucketed.state_dict(), one.state_dict());
  // Both reducers sum in float64: the same weights to rounding.
  test::expect_state_near(bucketed.state_dict(), oneshot.state_dict(), 1e-7, 1e-6);
  EXPECT_NO_THROW(dist::check_consistent(bucketed.state_dict(), "after the bucketed steps"));
}

// A parameter that gets a gradient on some ranks only counts as zero on the
// others; one that gets none anywhere keeps none.
TEST(DataParallel, BucketedGradientReducerHandlesMissingGradients) {
  dist::Communicator& comm = dist::world();
  Tensor a = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  Tensor b = Tensor::from_vector<double>({3}, {1}).set_requires_grad();
  Tensor never = Tensor::from_vector<double>({5}, {1}).set_requires_grad();
  nn::StateDict params{{"a", a, nn::TensorKind::Parameter}, {"b", b, nn::TensorKind::Parameter},
                       {"never", never, nn::TensorKind::Parameter}};
  dist::GradientReducer reducer(params, comm, nullptr, 8);  // one value per bucket
  double r = comm.rank();
  // d/da = (r+1) * [1, 1]; b is used on rank 0 only, with d/db = 2b = 6.
  Tensor loss = ops::mul(ops::sum(a), r + 1);
  if (comm.rank() == 0) loss = ops::add(loss, ops::sum(ops::mul(b, b)));
  reducer.backward(loss);
  double n = comm.size();
  double mean_a = (n + 1) / 2;  // mean of 1..n
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{mean_a, mean_a}));
  ASSERT_TRUE(b.grad().defined());
  EXPECT_DOUBLE_EQ(b.grad().item(), 6.0 / n);
  EXPECT_FALSE(never.grad().defined());
}
