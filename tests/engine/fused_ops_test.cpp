// The fused ops a ResNet block uses (add_relu; batch norm with
// BatchNormOptions::relu) give what their unfused forms give, forward and
// every gradient; their float64 gradients match finite differences; and each
// records one graph node where the unfused form records two.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace advcl;
using advcl::testing::expect_gradients_match;
using advcl::testing::random_tensor;

namespace {

void expect_equal(const Tensor& a, const Tensor& b, const char* what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>()) << what;
}

}  // namespace

TEST(FusedOps, AddReluEqualsReluOfAdd) {
  Tensor a = random_tensor({4, 3, 5}, 1), b = random_tensor({4, 3, 5}, 2), up = random_tensor({4, 3, 5}, 3);
  Tensor a1 = a.clone().set_requires_grad(), b1 = b.clone().set_requires_grad();
  Tensor y1 = ops::relu(ops::add(a1, b1));
  std::vector<Tensor> g1 = grad(y1, {a1, b1}, up);
  Tensor a2 = a.clone().set_requires_grad(), b2 = b.clone().set_requires_grad();
  Tensor y2 = ops::add_relu(a2, b2);
  EXPECT_EQ(y2.grad_fn()->name, "add_relu");
  EXPECT_EQ(y2.grad_fn()->inputs.size(), 2u);  // one node, straight to the leaves
  std::vector<Tensor> g2 = grad(y2, {a2, b2}, up);
  expect_equal(y2, y1, "output");
  expect_equal(g2[0], g1[0], "gradient of a");
  expect_equal(g2[1], g1[1], "gradient of b");
  // A negative sum stops the gradient; a zero output too (as relu's).
  std::vector<double> out = y2.to_vector<double>();
  EXPECT_GT(std::count(out.begin(), out.end(), 0.0), 0);
}

TEST(FusedOps, AddReluGradientsMatchFiniteDifferences) {
  expect_gradients_match([](const std::vector<Tensor>& in) { return ops::add_relu(in[0], in[1]); },
                         {random_tensor({3, 7}, 4), random_tensor({3, 7}, 5)});
}

TEST(FusedOps, AddReluRefusesBroadcasting) {
  EXPECT_THROW(ops::add_relu(random_tensor({3, 4}, 6), random_tensor({4}, 7)), Error);
}

TEST(FusedOps, BatchNormReluEqualsReluOfBatchNorm) {
  for (bool channels_last : {false, true}) {
    SCOPED_TRACE(channels_last ? "channels last" : "channels first");
    Tensor x = random_tensor({6, 4, 3, 3}, 10, -1, 2), w = random_tensor({4}, 11, 0.5, 1.5), b = random_tensor({4}, 12);
    if (channels_last) x = ops::to_channels_last(x);
    Tensor up = random_tensor(x.shape(), 13);
    auto run = [&](bool fused, Tensor& y) {
      Tensor xs = x.clone().set_requires_grad(), ws = w.clone().set_requires_grad(), bs = b.clone().set_requires_grad();
      Tensor rm = Tensor::zeros({4}, DType::Float64), rv = Tensor::ones({4}, DType::Float64);
      ops::BatchNormOptions opt;
      opt.channels_last = channels_last;
      opt.relu = fused;
      y = ops::batch_norm(xs, ws, bs, rm, rv, opt);
      if (!fused) y = ops::relu(y);
      std::vector<Tensor> g = grad(y, {xs, ws, bs}, up);
      g.push_back(rm);
      g.push_back(rv);
      return g;
    };
    Tensor y1, y2;
    std::vector<Tensor> g1 = run(false, y1), g2 = run(true, y2);
    expect_equal(y2, y1, "output");
    const char* what[] = {"input gradient", "weight gradient", "bias gradient", "running mean", "running var"};
    for (size_t i = 0; i < g1.size(); ++i) expect_equal(g2[i], g1[i], what[i]);
  }
}

TEST(FusedOps, BatchNormReluGradientsMatchFiniteDifferences) {
  ops::BatchNormOptions opt;
  opt.relu = true;
  expect_gradients_match(
      [&](const std::vector<Tensor>& in) { return ops::batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), opt); },
      {random_tensor({4, 3, 2, 2}, 20), random_tensor({3}, 21, 0.5, 1.5), random_tensor({3}, 22)});
}
