// GPU against CPU for the per-view batch norm (statistics over many blocks
// per channel), the multi-tensor SGD update and the warp-per-row softmax
// family: values, gradients, running statistics and momentum buffers; plus
// what the CPU cannot see: reruns on the GPU give the same bits, and a warm
// SGD step allocates nothing on the device. They skip without a GPU (and in
// builds without CUDA), so the CPU build compiles and lists them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "cuda/runtime.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "nn/module.h"
#include "nn/sgd.h"
#include "tests/cuda/gpu_test_util.h"

using namespace advcl;

namespace {

using gpu_test::kGpu;
using gpu_test::max_rel_diff;

Tensor randn(const Shape& s, uint32_t sample, DType dt = DType::Float64) {
  return gpu_test::randn(s, 9, sample, dt);
}

// The batch-norm call under test on `dev`: x and per-set (w, b, rm, rv).
struct BnRun {
  Tensor x, y;
  std::vector<ops::BatchNormParams> sets;
};

BnRun run_bn(const Shape& shape, std::vector<int> view_set, int64_t group, bool training, DType dt, Device dev) {
  BnRun r;
  int64_t C = shape[1];
  r.x = randn(shape, 1, dt).to(dev).set_requires_grad();
  ops::BatchNormViews v;
  for (uint32_t k = 0; k < 2; ++k) {
    Tensor rv = ops::add(ops::abs(randn({C}, 13 + 4 * k, dt)), 0.5).to(dev);
    v.sets.push_back({randn({C}, 10 + 4 * k, dt).to(dev).set_requires_grad(),
                      randn({C}, 11 + 4 * k, dt).to(dev).set_requires_grad(), randn({C}, 12 + 4 * k, dt).to(dev), rv});
  }
  v.view_set = std::move(view_set);
  v.group_rows = group;
  r.y = ops::batch_norm_views(r.x, v, {training, 0.1, 1e-5});
  backward(ops::sum(ops::mul(r.y, randn(shape, 2, dt).to(dev))));
  r.sets = v.sets;
  return r;
}

void bn_parity(const Shape& shape, std::vector<int> view_set, int64_t group, bool training, DType dt, double tol) {
  SCOPED_TRACE(::testing::Message() << shape_str(shape) << " group " << group << " training " << training << " "
                                    << dtype_name(dt));
  BnRun c = run_bn(shape, view_set, group, training, dt, Device::cpu());
  BnRun g = run_bn(shape, view_set, group, training, dt, kGpu);
  EXPECT_LE(max_rel_diff(g.y, c.y), tol) << "output";
  EXPECT_LE(max_rel_diff(g.x.grad(), c.x.grad()), tol) << "input gradient";
  for (size_t k = 0; k < c.sets.size(); ++k) {
    EXPECT_LE(max_rel_diff(g.sets[k].weight.grad(), c.sets[k].weight.grad()), tol) << "weight gradient " << k;
    EXPECT_LE(max_rel_diff(g.sets[k].bias.grad(), c.sets[k].bias.grad()), tol) << "bias gradient " << k;
    EXPECT_LE(max_rel_diff(g.sets[k].running_mean, c.sets[k].running_mean), tol) << "running_mean " << k;
    EXPECT_LE(max_rel_diff(g.sets[k].running_var, c.sets[k].running_var), tol) << "running_var " << k;
  }
}

}  // namespace

TEST(CudaKernels, BatchNormViewsMatchesCpu) {
  REQUIRE_GPU();
  for (bool training : {true, false}) {
    bn_parity({12, 3, 5, 5}, {0, 1, 0}, 0, training, DType::Float64, 1e-10);
    bn_parity({12, 3, 5, 5}, {0, 1, 0}, 0, training, DType::Float32, 1e-4);
  }
  bn_parity({20, 3, 2, 2}, {1, 0}, 4, true, DType::Float64, 1e-10);  // ghost groups 4, 4, 2
  bn_parity({24, 5}, {1, 1, 0}, 0, true, DType::Float32, 1e-4);      // BatchNorm1d
  // Many blocks per channel: 10 chunks of 64 rows per view, the last partial.
  bn_parity({2 * 600, 4, 8, 8}, {0, 1}, 0, true, DType::Float64, 1e-10);
  bn_parity({2 * 600, 4, 8, 8}, {0, 1}, 0, true, DType::Float32, 1e-4);
}

// Fixed-order reductions: a rerun gives the same bits (forward and backward).
TEST(CudaKernels, BatchNormRerunsAreBitIdentical) {
  REQUIRE_GPU();
  BnRun a = run_bn({2 * 300, 8, 16, 16}, {0, 1}, 0, true, DType::Float32, kGpu);
  BnRun b = run_bn({2 * 300, 8, 16, 16}, {0, 1}, 0, true, DType::Float32, kGpu);
  EXPECT_EQ(max_rel_diff(a.y, b.y), 0.0);
  EXPECT_EQ(max_rel_diff(a.x.grad(), b.x.grad()), 0.0);
  EXPECT_EQ(max_rel_diff(a.sets[0].weight.grad(), b.sets[0].weight.grad()), 0.0);
  EXPECT_EQ(max_rel_diff(a.sets[1].running_var, b.sets[1].running_var), 0.0);
}

namespace {

class Params : public nn::Module {
 public:
  Params(DType dt, Device dev) {
    const int64_t sizes[] = {5000, 3, 64 * 3 * 3 * 3, 1};
    for (uint32_t i = 0; i < 4; ++i)
      ps.push_back(register_parameter("p" + std::to_string(i), randn({sizes[i]}, 30 + i, dt).to(dev)));
  }
  std::vector<Tensor> ps;
};

}  // namespace

TEST(CudaKernels, MultiTensorSgdMatchesCpuAndWarmStepAllocatesNothing) {
  REQUIRE_GPU();
  for (DType dt : {DType::Float64, DType::Float32}) {
    SCOPED_TRACE(dtype_name(dt));
    Params c(dt, Device::cpu()), g(dt, kGpu);
    nn::Sgd sc(c.named_parameters(), {0.1, 0.9, 5e-4}), sg(g.named_parameters(), {0.1, 0.9, 5e-4});
    for (uint32_t step = 0; step < 3; ++step) {
      for (size_t i = 0; i < c.ps.size(); ++i) {
        Tensor grad = randn(c.ps[i].shape(), 100 * step + static_cast<uint32_t>(i), dt);
        c.ps[i].set_grad(grad);
        g.ps[i].set_grad(grad.to(kGpu));
      }
      int64_t before = storage_allocations();
      sg.step();
      if (step > 0) {
        EXPECT_EQ(storage_allocations(), before) << "a warm GPU step allocated";
      }
      sc.step();
      double tol = dt == DType::Float64 ? 1e-14 : 1e-6;
      for (size_t i = 0; i < c.ps.size(); ++i) EXPECT_LE(max_rel_diff(g.ps[i], c.ps[i]), tol) << "parameter " << i;
    }
  }
}

TEST(CudaKernels, SoftmaxFamilyWarpPerRowMatchesCpu) {
  REQUIRE_GPU();
  for (DType dt : {DType::Float64, DType::Float32}) {
    double tol = dt == DType::Float64 ? 1e-12 : 1e-5;
    for (int64_t C : {int64_t{1}, int64_t{10}, int64_t{33}, int64_t{1000}}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " C " << C);
      const int64_t rows = 37;
      Tensor x = ops::mul(randn({rows, C}, 40, dt), 3.0), r = randn({rows, C}, 41, dt);
      std::vector<int64_t> lv(rows);
      for (int64_t i = 0; i < rows; ++i) lv[static_cast<size_t>(i)] = i % 7 == 3 ? -1 : (i * 5) % C;
      Tensor labels = Tensor::from_vector<int64_t>(lv, {rows});
      for (int kind = 0; kind < 3; ++kind) {
        auto f = [&](const Tensor& in, const Tensor& weights) {
          if (kind == 0) return ops::sum(ops::mul(ops::softmax(in), weights));
          if (kind == 1) return ops::sum(ops::mul(ops::log_softmax(in), weights));
          return ops::cross_entropy(in, labels.to(in.device()));
        };
        Tensor xc = x.clone().set_requires_grad(), xg = x.to(kGpu).set_requires_grad();
        Tensor lc = f(xc, r), lg = f(xg, r.to(kGpu));
        backward(lc);
        backward(lg);
        EXPECT_LE(max_rel_diff(lg, lc), tol) << "kind " << kind;
        EXPECT_LE(max_rel_diff(xg.grad(), xc.grad()), tol) << "gradient, kind " << kind;
      }
      Tensor y1 = ops::softmax(x.to(kGpu)), y2 = ops::softmax(x.to(kGpu));
      EXPECT_EQ(max_rel_diff(y1, y2), 0.0) << "rerun";
    }
  }
}
