// SGD against steps computed by hand (torch.optim.SGD semantics), in float64.
#include <gtest/gtest.h>

#include "nn/layers.h"
#include "nn/sgd.h"
#include "tests/nn/nn_test_util.h"

using namespace advcl;
using namespace advcl::nn;

namespace {
// A module with one parameter p = [1, -2].
class One : public Module {
 public:
  One() { p = register_parameter("p", Tensor::from_vector<double>({1.0, -2.0}, {2})); }
  Tensor p;
};
void set_grad(Tensor p, std::vector<double> g) { p.set_grad(Tensor::from_vector<double>(g, {2})); }
}  // namespace

TEST(Sgd, MomentumAndWeightDecayByHand) {
  One m;
  Sgd sgd(m.named_parameters(), {0.1, 0.9, 0.01});
  set_grad(m.p, {0.5, 0.25});
  sgd.step();
  // d = g + wd p = [0.51, 0.23]; buf = d; p = p - 0.1 d
  std::vector<double> p = m.p.to_vector<double>();
  EXPECT_DOUBLE_EQ(p[0], 1 - 0.1 * 0.51);
  EXPECT_DOUBLE_EQ(p[1], -2 - 0.1 * 0.23);
  double b0 = 0.51, b1 = 0.23, p0 = p[0], p1 = p[1];
  set_grad(m.p, {-1.0, 2.0});
  sgd.set_lr(0.05);
  sgd.step();
  // d = g + wd p; buf = 0.9 buf + d; p -= lr buf
  double d0 = -1 + 0.01 * p0, d1 = 2 + 0.01 * p1;
  b0 = 0.9 * b0 + d0, b1 = 0.9 * b1 + d1;
  p = m.p.to_vector<double>();
  EXPECT_NEAR(p[0], p0 - 0.05 * b0, 1e-15);
  EXPECT_NEAR(p[1], p1 - 0.05 * b1, 1e-15);
  std::vector<double> buf = sgd.momentum_buffers().at("p").to_vector<double>();
  EXPECT_NEAR(buf[0], b0, 1e-15);
  EXPECT_NEAR(buf[1], b1, 1e-15);
}

TEST(Sgd, NoMomentumIsPlainDescent) {
  One m;
  Sgd sgd(m.named_parameters(), {0.5, 0.0, 0.0});
  set_grad(m.p, {1.0, 1.0});
  sgd.step();
  EXPECT_EQ(m.p.to_vector<double>(), (std::vector<double>{0.5, -2.5}));
  EXPECT_TRUE(sgd.momentum_buffers().empty());
}

TEST(Sgd, SkipsParametersWithoutGradient) {
  One m;
  Sgd sgd(m.named_parameters(), {0.1, 0.9, 0.1});
  sgd.step();  // no gradient: no decay, no buffer (as torch skips p.grad None)
  EXPECT_EQ(m.p.to_vector<double>(), (std::vector<double>{1.0, -2.0}));
  EXPECT_TRUE(sgd.momentum_buffers().empty());
  set_grad(m.p, {0, 0});
  sgd.zero_grad();
  EXPECT_FALSE(m.p.grad().defined());
}

TEST(Sgd, RejectsBadOptionsAndBuffers) {
  One m;
  EXPECT_THROW(Sgd(m.named_parameters(), {-1, 0.9, 0}), Error);
  Sgd sgd(m.named_parameters(), {0.1, 0.9, 0});
  EXPECT_THROW(sgd.set_momentum_buffers({{"q", Tensor::zeros({2}, DType::Float64)}}), Error);
  try {
    sgd.set_momentum_buffers({{"p", Tensor::zeros({3}, DType::Float64)}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'p'"), std::string::npos) << e.what();
  }
}
