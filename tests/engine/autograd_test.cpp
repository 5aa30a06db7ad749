#include <gtest/gtest.h>

#include <algorithm>

#include "engine/counters.h"
#include "engine/ops.h"

using namespace advcl;

TEST(Autograd, BackwardAccumulatesIntoLeaves) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad();
  // y = sum(x * x + x): dy/dx = 2x + 1; a leaf used twice gets both contributions.
  Tensor y = ops::sum(ops::add(ops::mul(x, x), x));
  backward(y);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 5, 7}));
  // A second graph accumulates on top, as in PyTorch.
  backward(ops::sum(x));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 6, 8}));
}

TEST(Autograd, GradLeavesLeafGradsUntouched) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  Tensor w = Tensor::from_vector<double>({3, 4}, {2}).set_requires_grad();
  Tensor y = ops::sum(ops::mul(x, w));
  std::vector<Tensor> g = grad(y, {x});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{3, 4}));
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, InputGradientComputesNoWeightGradient) {
  // A conv net: the input gradient alone must run backward-data only.
  Tensor x = ops::rand_uniform({2, 3, 8, 8}, {1, 0, 0, 0}).set_requires_grad();
  Tensor w1 = ops::rand_uniform({4, 3, 3, 3}, {1, 0, 1, 0}, -0.3, 0.3).set_requires_grad();
  Tensor w2 = ops::rand_uniform({5, 4, 3, 3}, {1, 0, 2, 0}, -0.3, 0.3).set_requires_grad();
  Tensor fc = ops::rand_uniform({3, 5}, {1, 0, 3, 0}, -0.3, 0.3).set_requires_grad();
  auto net = [&] {
    Tensor h = ops::relu(ops::conv2d(x, w1, Tensor(), {1, 1}));
    h = ops::relu(ops::conv2d(h, w2, Tensor(), {2, 1}));
    Tensor logits = ops::linear(ops::global_avg_pool(h), fc);
    return ops::cross_entropy(logits, Tensor::from_vector<int64_t>({0, 2}, {2}));
  };
  counters::reset();
  grad(net(), {x});
  EXPECT_EQ(counters::get("conv2d.backward_weight"), 0);
  EXPECT_EQ(counters::get("conv2d.backward_data"), 2);
  // Sanity: a full backward does compute both weight gradients.
  counters::reset();
  backward(net());
  EXPECT_EQ(counters::get("conv2d.backward_weight"), 2);
  // The first conv's input gradient (x) is needed too, since x requires grad.
  EXPECT_EQ(counters::get("conv2d.backward_data"), 2);
}

TEST(Autograd, BackwardThroughFreedGraphIsAnError) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  Tensor y = ops::sum(ops::exp(x));
  backward(y);
  try {
    backward(y);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already freed"), std::string::npos) << e.what();
  }
  Tensor z = ops::sum(ops::exp(x));
  backward(z, Tensor(), /*retain_graph=*/true);
  EXPECT_NO_THROW(backward(z));
}

TEST(Autograd, NonDifferentiableOpIsAnError) {
  Tensor x = Tensor::from_vector<double>({1, 5, 2, 0}, {2, 2}).set_requires_grad();
  Tensor idx = ops::argmax(x, 1);
  EXPECT_EQ(idx.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  try {
    backward(idx, Tensor::ones({2}, DType::Int64));
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("argmax"), std::string::npos) << e.what();
  }
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  {
    NoGradGuard guard;
    Tensor y = ops::mul(x, 2.0);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
    EXPECT_THROW(backward(ops::sum(y)), Error);
  }
  EXPECT_TRUE(ops::mul(x, 2.0).requires_grad());
}

TEST(Autograd, GradOfUnrelatedInputIsZero) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  Tensor u = Tensor::from_vector<double>({7, 7, 7}, {3}).set_requires_grad();
  std::vector<Tensor> g = grad(ops::sum(ops::mul(x, x)), {x, u});
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{2, 4}));
  EXPECT_EQ(g[1].to_vector<double>(), (std::vector<double>{0, 0, 0}));
}

TEST(Autograd, GradOfIntermediateTensor) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  Tensor h = ops::mul(x, 3.0);
  Tensor y = ops::sum(ops::mul(h, h));
  std::vector<Tensor> g = grad(y, {h});  // dy/dh = 2h
  EXPECT_EQ(g[0].to_vector<double>(), (std::vector<double>{6, 12}));
}

TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
  Tensor x = Tensor::from_vector<double>({1}, {1}).set_requires_grad();
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = ops::add(y, 1.0);
  backward(ops::sum(y));
  EXPECT_EQ(x.grad().item(), 1.0);
}

TEST(Autograd, ErrorsAreClear) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad();
  EXPECT_THROW(backward(ops::mul(x, 2.0)), Error);  // not a scalar, no grad_out
  Tensor c = Tensor::from_vector<double>({1, 2}, {2});
  EXPECT_THROW(grad(ops::sum(ops::mul(x, c)), {c}), Error);  // c does not require grad
  EXPECT_THROW(ops::mul(x, 2.0).set_requires_grad(), Error);  // not a leaf
  EXPECT_THROW(Tensor::zeros({2}, DType::Int64).set_requires_grad(), Error);
}

TEST(Autograd, LeafReadyHookFiresOnceWithTheFinalGradientInBackwardOrder) {
  // loss = sum(w2 * exp(w1 * x)) + sum(b): w2 and b are finished before
  // the walk reaches w1, which is deepest; x requires no gradient; `unused`
  // gets none and must not be reported.
  Tensor x = Tensor::from_vector<double>({0.5, -1, 2}, {3});
  Tensor w1 = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad();
  Tensor w2 = Tensor::from_vector<double>({-1, 0.5, 2}, {3}).set_requires_grad();
  Tensor b = Tensor::from_vector<double>({1, 1, 1}, {3}).set_requires_grad();
  Tensor unused = Tensor::from_vector<double>({7}, {1}).set_requires_grad();
  // w1 is used twice (the second use nearer the loss), so its gradient is
  // only final after its first use's node.
  Tensor h = ops::exp(ops::mul(w1, x));
  Tensor loss = ops::add(ops::add(ops::sum(ops::mul(w2, h)), ops::sum(b)), ops::sum(ops::mul(w1, w1)));
  std::vector<const TensorImpl*> order;
  std::vector<std::vector<double>> at_report;
  backward(loss, [&](const Tensor& leaf) {
    order.push_back(leaf.get());
    at_report.push_back(leaf.grad().to_vector<double>());
  });
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order.back(), w1.get());  // the deepest leaf comes last
  const Tensor* leaves[] = {&w1, &w2, &b};
  for (const Tensor* leaf : leaves) {
    auto it = std::find(order.begin(), order.end(), leaf->get());
    ASSERT_NE(it, order.end());
    // What the hook saw is the final gradient.
    EXPECT_EQ(at_report[static_cast<size_t>(it - order.begin())], leaf->grad().to_vector<double>());
  }
  EXPECT_FALSE(unused.grad().defined());
  // The gradients equal those of a plain backward.
  Tensor w1b = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad();
  Tensor hb = ops::exp(ops::mul(w1b, x));
  backward(ops::add(ops::add(ops::sum(ops::mul(w2.detach(), hb)), ops::sum(b.detach())), ops::sum(ops::mul(w1b, w1b))));
  EXPECT_EQ(w1.grad().to_vector<double>(), w1b.grad().to_vector<double>());
}

TEST(Autograd, LeafReadyHookReportsALeafLoss) {
  Tensor x = Tensor::from_vector<double>({3}, {1}).set_requires_grad();
  int calls = 0;
  backward(x, [&](const Tensor& leaf) {
    EXPECT_EQ(leaf.get(), x.get());
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1}));
}
