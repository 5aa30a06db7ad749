// ops::batch_norm_views: V views (and ghost groups) normalised in one op equal
// ops::batch_norm on each slice run separately (outputs, input and parameter
// gradients, running statistics); float64 finite differences of the whole op;
// the two-level reduction's pieces (chunks, shifted sums, float accumulation)
// against direct sums; and the structure that makes it one pass: a single
// graph node with the batch itself as input (no slice, no cat).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/counters.h"
#include "engine/kernels/batch_norm.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"
#include "tests/tensor_compare.h"

using namespace advcl;
using advcl::testing::expect_gradients_match;
using advcl::testing::max_abs_diff;
using advcl::testing::random_tensor;

namespace {

ops::BatchNormParams random_set(int64_t C, uint32_t seed, DType dt = DType::Float64) {
  return {random_tensor({C}, seed, 0.5, 1.5).to(dt), random_tensor({C}, seed + 1).to(dt),
          random_tensor({C}, seed + 2).to(dt), random_tensor({C}, seed + 3, 0.5, 2).to(dt)};
}

ops::BatchNormParams clone_set(const ops::BatchNormParams& p) {
  return {p.weight.clone().set_requires_grad(), p.bias.clone().set_requires_grad(), p.running_mean.clone(),
          p.running_var.clone()};
}

// The views of `view_set` over x (rows split evenly), in one op and slice by
// slice (each view's groups of `group` rows separately, only a view's first
// group updating its running statistics), compared within `tol`.
void one_op_equals_slices(const Shape& shape, std::vector<int> view_set, int n_sets, int64_t group, bool training,
                          DType dt, double tol) {
  SCOPED_TRACE(::testing::Message() << "shape " << shape_str(shape) << " views " << view_set.size() << " group "
                                    << group << " training " << training << " " << dtype_name(dt));
  int64_t C = shape[1], V = static_cast<int64_t>(view_set.size()), B = shape[0] / V;
  ops::BatchNormViews joint, sep;
  for (int k = 0; k < n_sets; ++k) {
    ops::BatchNormParams p = random_set(C, 10 * static_cast<uint32_t>(k) + 3, dt);
    joint.sets.push_back(clone_set(p));
    sep.sets.push_back(clone_set(p));
  }
  joint.view_set = view_set;
  joint.group_rows = group;
  ops::BatchNormOptions opt{training, 0.1, 1e-5};
  Tensor x = random_tensor(shape, 1, -2, 3).to(dt).set_requires_grad();
  Tensor r = random_tensor(shape, 2).to(dt);
  Tensor y = ops::batch_norm_views(x, joint, opt);
  backward(ops::sum(ops::mul(y, r)));

  Tensor xs = x.detach().clone().set_requires_grad();
  std::vector<Tensor> parts;
  for (int64_t v = 0; v < V; ++v) {
    const ops::BatchNormParams& p = sep.sets[static_cast<size_t>(view_set[static_cast<size_t>(v)])];
    int64_t G = training && group > 0 ? group : B;
    for (int64_t s = 0; s < B; s += G) {
      Tensor part = ops::slice(xs, v * B + s, v * B + std::min(B, s + G));
      // Eval reads the running statistics; training updates them from a view's first group only.
      bool use_running = !training || s == 0;
      parts.push_back(ops::batch_norm(part, p.weight, p.bias, use_running ? p.running_mean : Tensor(),
                                      use_running ? p.running_var : Tensor(), opt));
    }
  }
  Tensor y_sep = ops::cat(parts);
  backward(ops::sum(ops::mul(y_sep, r)));

  EXPECT_LE(max_abs_diff(y, y_sep), tol) << "output";
  EXPECT_LE(max_abs_diff(x.grad(), xs.grad()), tol * 10) << "input gradient";
  for (int k = 0; k < n_sets; ++k) {
    const ops::BatchNormParams &a = joint.sets[static_cast<size_t>(k)], &b = sep.sets[static_cast<size_t>(k)];
    ASSERT_EQ(a.weight.grad().defined(), b.weight.grad().defined()) << "set " << k;
    if (a.weight.grad().defined()) {
      EXPECT_LE(max_abs_diff(a.weight.grad(), b.weight.grad()), tol * 10) << "weight gradient of set " << k;
      EXPECT_LE(max_abs_diff(a.bias.grad(), b.bias.grad()), tol * 10) << "bias gradient of set " << k;
    }
    EXPECT_LE(max_abs_diff(a.running_mean, b.running_mean), tol) << "running_mean of set " << k;
    EXPECT_LE(max_abs_diff(a.running_var, b.running_var), tol) << "running_var of set " << k;
  }
}

}  // namespace

TEST(BatchNormViews, OneOpEqualsSlicesFloat64) {
  // Repeated sets (set 1 in views 0 and 2: two running updates in view order), an unused set.
  one_op_equals_slices({15, 3, 4, 4}, {1, 0, 1}, 3, 0, true, DType::Float64, 1e-12);
  one_op_equals_slices({24, 4}, {2, 2, 0, 1}, 3, 0, true, DType::Float64, 1e-12);
  one_op_equals_slices({12, 3, 2, 3}, {0, 1}, 2, 0, false, DType::Float64, 1e-12);
  // Ghost groups inside views: 10 rows per view in groups of 4, 4, 2.
  one_op_equals_slices({20, 3, 2, 2}, {1, 0}, 2, 4, true, DType::Float64, 1e-12);
  // Many chunks per unit (rows of 9 values, 455 rows per chunk) and a partial last chunk.
  one_op_equals_slices({2 * 1000, 2, 3, 3}, {0, 1}, 2, 0, true, DType::Float64, 1e-12);
}

TEST(BatchNormViews, OneOpEqualsSlicesFloat32) {
  one_op_equals_slices({15, 3, 4, 4}, {1, 0, 1}, 3, 0, true, DType::Float32, 2e-5);
  one_op_equals_slices({2 * 700, 3, 4, 4}, {0, 1}, 2, 0, true, DType::Float32, 2e-5);
}

// Finite differences of the whole op, with respect to x and every set's
// weight and bias (two views share set 0; ghost groups in the second case).
TEST(BatchNormViews, GradCheck) {
  for (int64_t group : {int64_t{0}, int64_t{3}}) {
    SCOPED_TRACE(group);
    int64_t C = 3;
    std::vector<Tensor> in{random_tensor({15, C, 2, 2}, 40, -2, 2)};
    for (uint32_t k = 0; k < 2; ++k) {
      in.push_back(random_tensor({C}, 41 + 2 * k, 0.5, 1.5));
      in.push_back(random_tensor({C}, 42 + 2 * k));
    }
    for (bool training : {true, false}) {
      expect_gradients_match(
          [C, group, training](auto& v) {
            ops::BatchNormViews views;
            for (size_t k = 0; k < 2; ++k)
              views.sets.push_back({v[1 + 2 * k], v[2 + 2 * k], Tensor::zeros({C}, DType::Float64),
                                    Tensor::full({C}, 1.5, DType::Float64)});
            views.view_set = {0, 1, 0};
            views.group_rows = group;
            return ops::batch_norm_views(v[0], views, {training, 0.1, 1e-5});
          },
          in);
    }
  }
}

// One pass: the output's node is the batch norm itself (not a cat of views),
// its input is the batch itself (not a slice), and the layer ran one op.
TEST(BatchNormViews, OneNodeNoSliceNoCat) {
  ops::BatchNormViews v;
  v.sets = {random_set(3, 50), random_set(3, 60)};
  v.view_set = {0, 1, 1, 0};
  Tensor x = random_tensor({8, 3, 2, 2}, 5).set_requires_grad();
  int64_t before = counters::get("batch_norm.forward");
  Tensor y = ops::batch_norm_views(x, v, {});
  EXPECT_EQ(counters::get("batch_norm.forward"), before + 1);
  ASSERT_TRUE(y.grad_fn());
  EXPECT_EQ(y.grad_fn()->name, "batch_norm");
  ASSERT_EQ(y.grad_fn()->inputs.size(), 5u);  // x, then (weight, bias) of each set
  EXPECT_TRUE(y.grad_fn()->inputs[0].same(x));
  EXPECT_TRUE(y.grad_fn()->inputs[1].same(v.sets[0].weight));
  EXPECT_TRUE(y.grad_fn()->inputs[4].same(v.sets[1].bias));
}

TEST(BatchNormViews, Errors) {
  ops::BatchNormViews v;
  v.sets = {random_set(3, 70)};
  v.view_set = {0, 0, 0};
  EXPECT_THROW(ops::batch_norm_views(random_tensor({8, 3}, 6), v, {}), Error);  // 8 rows, 3 views
  v.view_set = {0, 1};
  EXPECT_THROW(ops::batch_norm_views(random_tensor({8, 3}, 6), v, {}), Error);  // no set 1
  v.view_set = std::vector<int>(kernels::kBnMaxViews + 1, 0);
  EXPECT_THROW(ops::batch_norm_views(random_tensor({2 * (kernels::kBnMaxViews + 1), 3}, 6), v, {}), Error);
  v.view_set = {0, 0};
  v.sets[0].bias = v.sets[0].bias.to(DType::Float32);
  try {
    ops::batch_norm_views(random_tensor({8, 3}, 6), v, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("one dtype"), std::string::npos) << e.what();
  }
}

// An empty batch (a rank's share of a short last batch) in eval mode gives an
// empty output; training on it is an error.
TEST(BatchNormViews, EmptyBatch) {
  ops::BatchNormViews v;
  v.sets = {random_set(3, 90)};
  v.view_set = {0, 0};
  Tensor x = Tensor::empty({0, 3, 2, 2}, DType::Float64);
  EXPECT_EQ(ops::batch_norm_views(x, v, {false, 0.1, 1e-5}).shape(), x.shape());
  EXPECT_EQ(ops::batch_norm(x, v.sets[0].weight, v.sets[0].bias, v.sets[0].running_mean, v.sets[0].running_var,
                            {false, 0.1, 1e-5})
                .shape(),
            x.shape());
  EXPECT_THROW(ops::batch_norm_views(x, v, {true, 0.1, 1e-5}), Error);
}

// The layout: units, rows, chunk ranges cover each unit exactly once.
TEST(BatchNormViews, LayoutChunksCoverEachUnit) {
  kernels::BNLayout L{30, 2, 700, 15, 4};  // 2 views of 15 rows, groups 4,4,4,3; 5 rows per chunk
  EXPECT_EQ(L.units(), 8);
  EXPECT_EQ(L.chunk_rows(), 5);
  EXPECT_EQ(L.chunks(), 1);
  kernels::BNLayout M{3000, 2, 1, 1500, 1500};  // 1500 rows of one value: chunks of 4096 rows
  EXPECT_EQ(M.chunks(), 1);
  kernels::BNLayout W{200, 2, 100, 100, 100};  // 40 rows per chunk: 3 chunks, the last of 20 rows
  EXPECT_EQ(W.chunks(), 3);
  for (const kernels::BNLayout& l : {L, W}) {
    for (int64_t u = 0; u < l.units(); ++u) {
      int64_t covered = 0, next = l.first_row(u);
      for (int64_t k = 0; k < l.chunks(); ++k) {
        int64_t r0, r1;
        l.chunk_range(u, k, r0, r1);
        if (r1 > r0) {
          EXPECT_EQ(r0, next);
        }
        next = std::max(next, r1);
        covered += r1 - r0;
      }
      EXPECT_EQ(covered, l.rows(u)) << "unit " << u;
      for (int64_t r = l.first_row(u); r < l.first_row(u) + l.rows(u); ++r) EXPECT_EQ(l.unit_of_row(r), u);
    }
  }
  EXPECT_EQ(L.rows(3), 3);  // the short last group of view 0
  EXPECT_EQ(L.count(3, 4 * 700), 3.0 * 700);
  EXPECT_EQ(L.count(0, 12345), 12345.0);
}

// The GPU's accumulation (float32 within a chunk, around the shift, then the
// chunks combined in double) recovers the variance where unshifted float sums
// of squares lose it: values around 1000 with spread 1 (mean^2 / var = 1e6).
// The CPU op (double within a chunk) agrees with both.
TEST(BatchNormViews, ShiftedFloatChunkSumsKeepTheVariance) {
  const int64_t N = 3 * 4096 + 100;  // several chunks, the last partial
  Tensor x32 = random_tensor({N, 1}, 80, 999, 1001).to(DType::Float32);
  std::vector<float> xf = x32.to_vector<float>();
  kernels::BNLayout L{N, 1, 1, N, N};
  ASSERT_EQ(L.chunks(), 4);
  float shift = kernels::bn_shift(xf.data(), L, 0, 0);
  std::vector<double> ps(4), pq(4);
  for (int64_t k = 0; k < 4; ++k) kernels::bn_chunk_sums<float>(xf.data(), L, 0, 0, k, shift, ps[k], pq[k]);
  double sum, sum_sq;
  kernels::bn_combine_stats(ps.data(), pq.data(), 4, shift, static_cast<double>(N), sum, sum_sq);

  double s = 0, q = 0;
  for (float v : xf) s += v;
  double mean = s / N;
  for (float v : xf) q += (v - mean) * (v - mean);
  double var = q / N;
  double got_mean, got_var;
  kernels::bn_mean_var(sum, sum_sq, static_cast<double>(N), got_mean, got_var);
  EXPECT_NEAR(got_mean, mean, 1e-6);
  EXPECT_NEAR(got_var / var, 1.0, 1e-4);

  ops::ChannelStats st = ops::batch_norm_stats(x32);  // the CPU op
  kernels::bn_mean_var(st.sum.to_vector<double>()[0], st.sum_sq.to_vector<double>()[0], static_cast<double>(st.count),
                       got_mean, got_var);
  EXPECT_NEAR(got_mean, mean, 1e-9);
  EXPECT_NEAR(got_var / var, 1.0, 1e-9);

  // Without the shift, float sums of squares of ~1e6 lose the variance (~1/3) entirely.
  float fq = 0, fs = 0;
  for (float v : xf) {
    fs += v;
    fq += v * v;
  }
  double naive_var = static_cast<double>(fq) / N - (static_cast<double>(fs) / N) * (static_cast<double>(fs) / N);
  EXPECT_GT(std::fabs(naive_var / var - 1.0), 1e-2) << "the naive sum should be far off here";
}
