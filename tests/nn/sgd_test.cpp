// SGD against steps computed by hand (torch.optim.SGD semantics), in float64.
#include <gtest/gtest.h>

#include "engine/kernels/sgd.h"
#include "engine/ops.h"
#include "engine/storage.h"
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

namespace {

// Parameters of several sizes (one spans several kernels::kSgdChunk chunks,
// one is empty) in one dtype, plus `extra` tiny ones.
class Many : public Module {
 public:
  Many(DType dt, int extra) {
    const int64_t sizes[] = {3, 1, kernels::kSgdChunk * 2 + 17, 0, 100};
    for (uint32_t i = 0; i < 5; ++i)
      ps.push_back(register_parameter("p" + std::to_string(i), nn_test::rand_tensor({sizes[i]}, 100 + i, -1, 1, dt)));
    for (int k = 0; k < extra; ++k)
      ps.push_back(register_parameter("q" + std::to_string(k), nn_test::rand_tensor({2}, 500 + k, -1, 1, dt)));
  }
  std::vector<Tensor> ps;
};

// The per-parameter formula as separate ops (torch.optim.SGD's definition).
void reference_step(std::vector<Tensor>& p, std::vector<Tensor>& buf, const std::vector<Tensor>& g, SgdOptions o) {
  for (size_t i = 0; i < p.size(); ++i) {
    if (!g[i].defined()) continue;
    Tensor d = o.weight_decay != 0 ? ops::add(g[i], ops::mul(p[i], o.weight_decay)) : g[i];
    if (o.momentum != 0) {
      buf[i] = buf[i].defined() ? ops::add(ops::mul(buf[i], o.momentum), d) : d.clone();
      d = buf[i];
    }
    p[i] = ops::sub(p[i], ops::mul(d, o.lr));
  }
}

void multi_tensor_equals_formula(DType dt, int extra, SgdOptions o) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " extra " << extra << " momentum " << o.momentum);
  Many m(dt, extra);
  Sgd sgd(m.named_parameters(), o);
  std::vector<Tensor> p, buf(m.ps.size());
  for (auto& t : m.ps) p.push_back(t.clone());
  for (uint32_t step = 0; step < 3; ++step) {
    std::vector<Tensor> g(m.ps.size());
    for (size_t i = 0; i < m.ps.size(); ++i) {
      if ((i + step) % 4 == 1) continue;  // parameters without a gradient this step are skipped
      g[i] = nn_test::rand_tensor(m.ps[i].shape(), 1000 * step + static_cast<uint32_t>(i), -1, 1, dt);
    }
    sgd.zero_grad();
    for (size_t i = 0; i < m.ps.size(); ++i)
      if (g[i].defined()) m.ps[i].set_grad(g[i]);
    sgd.step();
    reference_step(p, buf, g, o);
    for (size_t i = 0; i < m.ps.size(); ++i) {
      // The same operations in the same precision: the same values.
      EXPECT_EQ(m.ps[i].to(DType::Float64).to_vector<double>(), p[i].to(DType::Float64).to_vector<double>())
          << "parameter " << i << " after step " << step;
      auto it = sgd.momentum_buffers().find(i < 5 ? "p" + std::to_string(i) : "q" + std::to_string(i - 5));
      ASSERT_EQ(it != sgd.momentum_buffers().end(), buf[i].defined()) << "buffer " << i;
      if (buf[i].defined()) {
        EXPECT_EQ(it->second.to(DType::Float64).to_vector<double>(), buf[i].to(DType::Float64).to_vector<double>());
      }
    }
  }
}

}  // namespace

TEST(Sgd, MultiTensorUpdateEqualsPerParameterFormula) {
  for (DType dt : {DType::Float64, DType::Float32}) {
    multi_tensor_equals_formula(dt, 0, {0.1, 0.9, 5e-4});
    multi_tensor_equals_formula(dt, 0, {0.05, 0.0, 1e-2});
    multi_tensor_equals_formula(dt, 0, {0.05, 0.9, 0.0});
  }
  // More parameters than one table holds.
  multi_tensor_equals_formula(DType::Float64, kernels::kSgdMaxTensors + 40, {0.1, 0.9, 5e-4});
}

TEST(Sgd, WarmStepAllocatesNothing) {
  Many m(DType::Float32, 20);
  Sgd sgd(m.named_parameters(), {0.1, 0.9, 5e-4});
  std::vector<Tensor> g;
  for (size_t i = 0; i < m.ps.size(); ++i) g.push_back(nn_test::rand_tensor(m.ps[i].shape(), 7, -1, 1, DType::Float32));
  auto set_grads = [&] {
    for (size_t i = 0; i < m.ps.size(); ++i) m.ps[i].set_grad(g[i]);
  };
  set_grads();
  int64_t before = storage_allocations();
  sgd.step();
  // The first step allocates each parameter's momentum buffer, nothing else.
  EXPECT_EQ(storage_allocations() - before, static_cast<int64_t>(m.ps.size()));
  for (int step = 0; step < 3; ++step) {
    set_grads();
    before = storage_allocations();
    sgd.step();
    EXPECT_EQ(storage_allocations(), before) << "step " << step + 2;
  }
}

TEST(Sgd, RejectsAGradientOfAnotherShape) {
  One m;
  Sgd sgd(m.named_parameters(), {0.1, 0.9, 0});
  m.p.set_grad(Tensor::zeros({3}, DType::Float64));
  EXPECT_THROW(sgd.step(), Error);
  // Nothing happened: no buffer, the parameter unchanged.
  EXPECT_TRUE(sgd.momentum_buffers().empty());
  EXPECT_EQ(m.p.to_vector<double>(), (std::vector<double>{1.0, -2.0}));
}
