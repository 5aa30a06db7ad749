// BN with named statistic sets: per-view statistics in one call equal
// separate calls (outputs, gradients, running statistics, counters); ghost
// statistics equal calls on each group; the synchronisation hook is used.
// Everything in float64; tolerance: rtol 1e-12 (the same arithmetic on the
// same slices, so in practice bit-identical).
#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/batch_norm.h"
#include "nn/checkpoint.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using namespace advcl::nn;
using testing_util::close;

namespace {

const testing_util::Tolerance kSame{1e-12, 1e-14};

// A layer with random affine parameters and running statistics.
std::unique_ptr<BatchNorm> make_bn(int64_t c, BatchNormOptions o, uint32_t tag = 7) {
  auto bn = std::make_unique<BatchNorm>(c, o);
  bn->to(DType::Float64);
  nn_test::randomize_state(*bn, tag);
  return bn;
}

// loss = sum(y * r) for a fixed random r, so every output element has its own gradient.
Tensor weighted_sum(const Tensor& y, uint32_t tag) { return ops::sum(ops::mul(y, nn_test::rand_tensor(y.shape(), tag))); }

void per_view_equals_separate_calls(const Shape& view_shape, std::vector<int> sets) {
  BatchNormOptions o;
  o.num_sets = 3;
  auto joint = make_bn(view_shape[1], o), separate = make_bn(view_shape[1], o);
  ASSERT_TRUE(nn_test::same_state(*joint, *separate));
  int64_t V = static_cast<int64_t>(sets.size()), B = view_shape[0];
  Shape full = view_shape;
  full[0] = V * B;
  Tensor x = nn_test::rand_tensor(full, 1, -2, 3);
  x.set_requires_grad();
  Tensor y = joint->forward(x, BnSets(sets));
  backward(weighted_sum(y, 2));

  std::vector<Tensor> xs, ys;
  for (int64_t v = 0; v < V; ++v) {
    xs.push_back(x.detach().narrow0(v * B, B).clone().set_requires_grad());
    ys.push_back(separate->forward(xs.back(), sets[static_cast<size_t>(v)]));
  }
  Tensor y_sep = ops::cat(ys);
  backward(weighted_sum(y_sep, 2));
  std::vector<Tensor> gxs;
  for (auto& t : xs) gxs.push_back(t.grad());

  EXPECT_TRUE(close("output", y, y_sep, kSame));
  EXPECT_TRUE(close("input gradient", x.grad(), ops::cat(gxs), kSame));
  StateDict a = joint->state_dict(), b = separate->state_dict();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(close(a[i].name, a[i].tensor, b[i].tensor, kSame));
    if (a[i].kind == TensorKind::Parameter) {
      ASSERT_EQ(a[i].tensor.grad().defined(), b[i].tensor.grad().defined()) << a[i].name;
      if (a[i].tensor.grad().defined()) {
        EXPECT_TRUE(close(a[i].name + ".grad", a[i].tensor.grad(), b[i].tensor.grad(), kSame));
      }
    }
  }
}

}  // namespace

TEST(BatchNormSets, PerViewEqualsSeparateCalls2d) { per_view_equals_separate_calls({5, 3, 4, 4}, {1, 0, 1}); }
TEST(BatchNormSets, PerViewEqualsSeparateCalls1d) { per_view_equals_separate_calls({6, 4}, {2, 2, 0, 1}); }
TEST(BatchNormSets, OneView) { per_view_equals_separate_calls({7, 3, 2, 3}, {2}); }

TEST(BatchNormSets, UnusedSetUntouched) {
  BatchNormOptions o;
  o.num_sets = 3;
  auto bn = make_bn(3, o);
  Tensor before_mean = bn->set(2).running_mean.clone();
  int64_t before_count = bn->set(2).num_batches_tracked.item();
  Tensor x = nn_test::rand_tensor({8, 3, 2, 2}, 3);
  bn->forward(x, {0, 1});
  EXPECT_TRUE(close("pgd_ce running_mean", bn->set(2).running_mean, before_mean, {0, 0}));
  EXPECT_EQ(bn->set(2).num_batches_tracked.item(), before_count);
}

TEST(BatchNormSets, EvalUsesEachViewsSet) {
  BatchNormOptions o;
  o.num_sets = 3;
  auto bn = make_bn(3, o);
  bn->eval();
  Tensor x = nn_test::rand_tensor({6, 3, 2, 2}, 4);
  Tensor y = bn->forward(x, {2, 0});
  for (int v = 0; v < 2; ++v) {
    BnStatSet& s = bn->set(v == 0 ? 2 : 0);
    Tensor want = ops::batch_norm(x.narrow0(3 * v, 3), s.weight, s.bias, s.running_mean, s.running_var,
                                  ops::BatchNormOptions{false, 0.1, 1e-5});
    EXPECT_TRUE(close("eval view " + std::to_string(v), y.narrow0(3 * v, 3), want, kSame));
  }
}

TEST(BatchNormSets, CounterCountsCallsPerSet) {
  BatchNormOptions o;
  o.num_sets = 3;
  BatchNorm bn(2, o);
  bn.forward(nn_test::rand_tensor({9, 2}, 5, -1, 1, DType::Float32), {1, 1, 0});
  EXPECT_EQ(bn.set(0).num_batches_tracked.item(), 1);
  EXPECT_EQ(bn.set(1).num_batches_tracked.item(), 2);
  EXPECT_EQ(bn.set(2).num_batches_tracked.item(), 0);
}

TEST(BatchNormSets, Names) {
  BatchNormOptions o;
  o.num_sets = 3;
  BatchNorm multi(2, o);
  StateDict s = multi.state_dict();
  ASSERT_EQ(s.size(), 15u);
  EXPECT_EQ(s[0].name, "bn_list.0.weight");
  EXPECT_EQ(s[4].name, "bn_list.0.num_batches_tracked");
  EXPECT_EQ(s[14].name, "bn_list.2.num_batches_tracked");
  EXPECT_EQ(s[2].kind, TensorKind::Buffer);
  EXPECT_EQ(s[1].kind, TensorKind::Parameter);
  BatchNorm single(2);
  EXPECT_EQ(single.state_dict()[0].name, "weight");
  EXPECT_EQ(single.state_dict()[4].name, "num_batches_tracked");
}

TEST(BatchNormSets, Errors) {
  BatchNormOptions o;
  o.num_sets = 3;
  BatchNorm bn(2, o);
  Tensor x = nn_test::rand_tensor({6, 2}, 6, -1, 1, DType::Float32);
  EXPECT_THROW(bn.forward(x, {0, 1, 2, 0}), Error);  // 6 rows, 4 views
  EXPECT_THROW(bn.forward(x, {0, 3}), Error);        // no set 3
  EXPECT_THROW(bn.forward(nn_test::rand_tensor({6, 3}, 6, -1, 1, DType::Float32), {0}), Error);
  // A failing call updates nothing.
  EXPECT_EQ(bn.set(0).num_batches_tracked.item(), 0);
  try {
    bn.forward(x, {0, 5});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("set 5"), std::string::npos) << e.what();
  }
}

// Ghost statistics: groups of G images within each view, running statistics
// from each view's first group only.
TEST(BatchNormSets, GhostEqualsGroupCalls) {
  BatchNormOptions ghost_opt;
  ghost_opt.num_sets = 3;
  ghost_opt.group_size = 4;
  BatchNormOptions plain_opt;
  plain_opt.num_sets = 3;
  auto ghost = make_bn(3, ghost_opt), manual = make_bn(3, plain_opt), first_only = make_bn(3, plain_opt);
  const int64_t B = 10;  // groups of 4, 4, 2
  Tensor x = nn_test::rand_tensor({2 * B, 3, 2, 2}, 8, -1, 2);
  x.set_requires_grad();
  Tensor y = ghost->forward(x, {1, 2});
  backward(weighted_sum(y, 9));

  std::vector<Tensor> parts, leaves;
  for (int v = 0; v < 2; ++v) {
    int set = v == 0 ? 1 : 2;
    for (int64_t s = 0; s < B; s += 4) {
      leaves.push_back(x.detach().narrow0(v * B + s, std::min<int64_t>(4, B - s)).clone().set_requires_grad());
      parts.push_back(manual->forward(leaves.back(), set));
      if (s == 0) first_only->forward(leaves.back().detach(), set);
    }
  }
  Tensor y_manual = ops::cat(parts);
  backward(weighted_sum(y_manual, 9));
  std::vector<Tensor> g;
  for (auto& l : leaves) g.push_back(l.grad());
  EXPECT_TRUE(close("ghost output", y, y_manual, kSame));
  EXPECT_TRUE(close("ghost input gradient", x.grad(), ops::cat(g), kSame));
  for (int set : {1, 2}) {
    EXPECT_TRUE(close("weight grad", ghost->set(set).weight.grad(), manual->set(set).weight.grad(), kSame));
    EXPECT_TRUE(close("running_mean", ghost->set(set).running_mean, first_only->set(set).running_mean, kSame));
    EXPECT_TRUE(close("running_var", ghost->set(set).running_var, first_only->set(set).running_var, kSame));
    EXPECT_EQ(ghost->set(set).num_batches_tracked.item(), first_only->set(set).num_batches_tracked.item());
  }
}

TEST(BatchNormSets, GhostRejectsSingletonGroup) {
  BatchNormOptions o;
  o.group_size = 4;
  BatchNorm bn(2, o);
  EXPECT_THROW(bn.forward(nn_test::rand_tensor({9, 2}, 1, -1, 1, DType::Float32), {0}), Error);
  o.group_size = 1;
  EXPECT_THROW(BatchNorm(2, o), Error);
}

namespace {
int g_backward_hook_calls = 0;
void double_sums(Tensor& sum_g, Tensor& sum_gx) {
  ++g_backward_hook_calls;
  sum_g = ops::mul(sum_g, 2.0);
  sum_gx = ops::mul(sum_gx, 2.0);
}
}  // namespace

// The hook seen by a future distributed layer: two identical "ranks" (every
// sum doubled) give the local output and gradients, and a running variance
// unbiased with the global count.
TEST(BatchNormSets, SyncHookSeesStatsAndBackwardSums) {
  int stats_calls = 0;
  auto sync = std::make_shared<BatchNormSync>();
  sync->all_reduce_stats = [&](ops::ChannelStats& s) {
    ++stats_calls;
    s.sum = ops::mul(s.sum, 2.0);
    s.sum_sq = ops::mul(s.sum_sq, 2.0);
    s.count *= 2;
  };
  sync->all_reduce_backward_sums = double_sums;
  BatchNormOptions so;
  so.num_sets = 3;
  so.sync = sync;
  BatchNormOptions lo;
  lo.num_sets = 3;
  auto synced = make_bn(3, so), local = make_bn(3, lo);
  Tensor x = nn_test::rand_tensor({8, 3, 2, 2}, 10);
  Tensor x2 = x.clone();
  x.set_requires_grad();
  x2.set_requires_grad();
  g_backward_hook_calls = 0;
  Tensor y = synced->forward(x, {0, 1});
  Tensor y2 = local->forward(x2, {0, 1});
  backward(weighted_sum(y, 11));
  backward(weighted_sum(y2, 11));
  // One collective per layer call, whatever the number of views.
  EXPECT_EQ(stats_calls, 1);
  EXPECT_EQ(g_backward_hook_calls, 1);
  EXPECT_TRUE(close("synced output", y, y2, {1e-12, 1e-14}));
  EXPECT_TRUE(close("synced input gradient", x.grad(), x2.grad(), {1e-10, 1e-12}));
  EXPECT_TRUE(close("synced running_mean", synced->set(0).running_mean, local->set(0).running_mean, kSame));
  // running_var: 0.9 r + 0.1 v n'/(n'-1) with n' = 2n (synced) vs n (local)
  const double n = 4 * 4;
  std::vector<double> rs = synced->set(0).running_var.to_vector<double>(), rl = local->set(0).running_var.to_vector<double>();
  auto fresh = make_bn(3, lo);
  std::vector<double> r_init = fresh->set(0).running_var.to_vector<double>();
  for (size_t c = 0; c < rs.size(); ++c) {
    double v_biased = (rl[c] - 0.9 * r_init[c]) / 0.1 * (n - 1) / n;
    EXPECT_NEAR(rs[c], 0.9 * r_init[c] + 0.1 * v_biased * (2 * n) / (2 * n - 1), 1e-12);
  }
}
