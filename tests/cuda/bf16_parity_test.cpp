// bf16 autocast on the GPU against the CPU: conv2d (forward, backward-data,
// backward-weight at the stem, a padded 3x3, a strided 3x3 and the strided
// 1x1 shortcut) and matmul / linear (forward and both gradients) under
// autocast on CUDA tensors, held to the CPU's float32 op and to the CPU's
// bf16 op on the same random data. They skip without a GPU, in a build
// without CUDA, and on a GPU older than compute capability 8.0 (no bf16
// tensor cores; --precision bf16 refuses those).
//
// The tolerances, per element, from S = sum |a_k b_k| over the element's dot
// product (the float64 op on the absolute values) and L, its length:
//  * u = 2^-8 is bf16's unit roundoff: 8 significant bits (7 stored), so
//    rounding to nearest moves a value by at most half its spacing, 2^-8 of
//    it (the spacing at 1 is 2^-7). Rounding a and b moves their product by
//    at most (2u + u^2) |a b|, so the sum moves by at most (2u + u^2) S.
//  * A float32 sum of L terms errs by at most about L 2^-24 S; we allow
//    L 2^-23 S on each side (tensor cores may truncate partial sums rather
//    than round them), x 1.01 for S of the rounded operands.
//  * conv2d only: cuDNN's bf16 configuration writes a bf16 output, which
//    rounds the float32 sum once more, by at most u of it (oneDNN on the CPU
//    writes float32).
// Against the CPU's float32 op (the unrounded operands):
//    |gpu - cpu32| <= (2u + u^2) S + 2 L 2^-23 S     [+ u (|cpu32| + that) for conv2d]
// Against the CPU's bf16 op (the same rounding of the operands, float32 sums
// and output), only the sums and the GPU's output rounding differ:
//    |gpu - cpu_bf16| <= e = 2 L 2^-23 S              [+ u (|cpu_bf16| + e) for conv2d]
// The second bound is the sharp one: the GPU's float32 product falls outside
// it (checked, for matmul and linear). For conv2d, whose output rounding
// makes that bound as wide as bf16's spacing, every GPU value must also be a
// bf16 value, and at least 90% must be exactly the CPU's bf16 result rounded
// to bf16: the two float32 sums differ far below bf16's spacing, so they
// round apart only where they straddle a rounding boundary, while operands
// rounded otherwise (truncated, say) would move most elements.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "advcl/cli/common_options.h"
#include "cuda/runtime.h"
#include "cuda/settings.h"
#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/counters.h"
#include "engine/ops.h"
#include "tests/cuda/gpu_test_util.h"

using namespace advcl;
using autocast::AutocastGuard;

namespace {

using gpu_test::kGpu;

constexpr double kU = 1.0 / 256;               // bf16's unit roundoff, 2^-8
constexpr double kSumTerm = 1.0 / (1 << 23);   // float32 sum error allowed per term and side, 2^-23

// Skips unless the machine has a GPU with bf16 tensor cores.
#define REQUIRE_BF16_GPU()                                                           \
  do {                                                                               \
    REQUIRE_GPU();                                                                   \
    const std::string why = cli::gpu_bf16_missing(cuda::compute_capability(0));      \
    if (!why.empty()) GTEST_SKIP() << why;                                           \
  } while (0)

Tensor rnd(const Shape& s, uint32_t sample) { return gpu_test::randn(s, 31, sample, DType::Float32); }
Tensor abs64(const Tensor& t) { return ops::abs(t.to(DType::Float64)); }

// The bound of the sums alone: |got - cpu_bf16| <= 2 L 2^-23 S (x 1.01), plus
// one float32 rounding of the result (a bias added after the product).
double sum_bound(double S, int64_t L, double c) { return 2.0 * L * kSumTerm * S * 1.01 + kSumTerm * std::fabs(c); }

// How many elements of `got` lie outside the sums' bound around the CPU's bf16 op.
int64_t outside_sum_bound(const Tensor& got, const Tensor& cpu_bf16, const Tensor& S, int64_t L) {
  std::vector<float> g = got.to(Device::cpu()).to_vector<float>(), c = cpu_bf16.to_vector<float>();
  std::vector<double> s = S.to_vector<double>();
  int64_t n = 0;
  for (size_t i = 0; i < g.size(); ++i) n += std::fabs(double(g[i]) - c[i]) > sum_bound(s[i], L, c[i]);
  return n;
}

// Holds `gpu` (the bf16 op on the GPU) to cpu32 and cpu_bf16 (the CPU's
// float32 and bf16 ops on the same data) with the bounds at the top;
// `bf16_output`: cuDNN rounded the result to bf16.
void check(const Tensor& gpu, const Tensor& cpu32, const Tensor& cpu_bf16, const Tensor& S, int64_t L,
           bool bf16_output, const std::string& what) {
  ASSERT_TRUE(gpu.device().is_cuda()) << what;
  ASSERT_EQ(gpu.dtype(), DType::Float32) << what << ": autocast's results are float32 tensors";
  ASSERT_EQ(gpu.shape(), cpu32.shape()) << what;
  std::vector<float> g = gpu.to(Device::cpu()).to_vector<float>(), f = cpu32.to_vector<float>(),
                     c = cpu_bf16.to_vector<float>();
  std::vector<double> s = S.to_vector<double>();
  int64_t bad = 0, not_bf16 = 0, same = 0;
  double worst32 = 0, worst_bf = 0;  // the largest error as a fraction of its bound
  for (size_t i = 0; i < g.size(); ++i) {
    double tol32 = (2 * kU + kU * kU) * s[i] + sum_bound(s[i], L, f[i]), tol_bf = sum_bound(s[i], L, c[i]);
    if (bf16_output) {
      tol32 += kU * (std::fabs(f[i]) + tol32);
      tol_bf += kU * (std::fabs(c[i]) + tol_bf);
      not_bf16 += autocast::round_bf16(g[i]) != g[i];
      same += g[i] == autocast::round_bf16(c[i]);
    }
    const double e32 = std::fabs(double(g[i]) - f[i]), e_bf = std::fabs(double(g[i]) - c[i]);
    if (!(e32 <= tol32) || !(e_bf <= tol_bf)) {
      if (bad++ < 5)
        ADD_FAILURE() << what << " element " << i << ": GPU bf16 " << g[i] << ", CPU float32 " << f[i] << " (bound "
                      << tol32 << "), CPU bf16 " << c[i] << " (bound " << tol_bf << "), S " << s[i];
    }
    if (tol32 > 0) worst32 = std::max(worst32, e32 / tol32);
    if (tol_bf > 0) worst_bf = std::max(worst_bf, e_bf / tol_bf);
  }
  EXPECT_EQ(bad, 0) << what << ": elements outside the bounds";
  if (bf16_output) {
    EXPECT_EQ(not_bf16, 0) << what << ": cuDNN's bf16 output is not bf16 (did the op run in float32?)";
    EXPECT_GE(same, 0.9 * double(g.size())) << what << ": too few elements equal the CPU's bf16 result rounded";
  }
  if (std::getenv("ADVCL_BF16_TEST_VERBOSE"))
    std::fprintf(stderr, "%s: worst error / bound: %.3g vs CPU float32, %.3g vs CPU bf16; %lld of %zu equal\n",
                 what.c_str(), worst32, worst_bf, static_cast<long long>(same), g.size());
}

struct ConvCase {
  int64_t N, Cin, H, Cout, k;
  int stride, pad;
};

const ConvCase kConvCases[] = {
    {2, 3, 12, 16, 3, 1, 1},   // the stem: 3 channels, padding 1
    {2, 32, 9, 24, 3, 1, 1},   // a block's 3x3, odd size
    {3, 16, 10, 32, 3, 2, 1},  // the strided 3x3
    {2, 16, 8, 32, 1, 2, 0},   // the strided 1x1 shortcut
};

std::string name(const ConvCase& c) {
  return "conv " + std::to_string(c.Cin) + "->" + std::to_string(c.Cout) + " k" + std::to_string(c.k) + " s" +
         std::to_string(c.stride) + " p" + std::to_string(c.pad);
}

bool all_bf16(const std::vector<float>& v) {
  for (float x : v)
    if (autocast::round_bf16(x) != x) return false;
  return true;
}

}  // namespace

TEST(Bf16CudaConv2d, ForwardAndBothGradientsMatchTheCpu) {
  REQUIRE_BF16_GPU();
  for (const ConvCase& c : kConvCases) {
    const ops::Conv2dOptions o{c.stride, c.pad};
    const Tensor x = rnd({c.N, c.Cin, c.H, c.H}, 1), w = rnd({c.Cout, c.Cin, c.k, c.k}, 2);
    const Tensor y32 = ops::conv2d_forward(x, w, Tensor(), o), gy = rnd(y32.shape(), 3);
    const Tensor gx32 = ops::conv2d_backward_data(gy, w, x.shape(), o);
    const Tensor gw32 = ops::conv2d_backward_weight(gy, x, w.shape(), o);
    const Tensor xg = x.to(kGpu), wg = w.to(kGpu), gyg = gy.to(kGpu);
    const int64_t passes = counters::get("conv2d.bf16");
    Tensor ybf, gxbf, gwbf, yg, gxg, gwg;
    {
      AutocastGuard on;
      ybf = ops::conv2d_forward(x, w, Tensor(), o);
      gxbf = ops::conv2d_backward_data(gy, w, x.shape(), o);
      gwbf = ops::conv2d_backward_weight(gy, x, w.shape(), o);
      yg = ops::conv2d_forward(xg, wg, Tensor(), o);
      gxg = ops::conv2d_backward_data(gyg, wg, x.shape(), o);
      gwg = ops::conv2d_backward_weight(gyg, xg, w.shape(), o);
    }
    EXPECT_EQ(counters::get("conv2d.bf16"), passes + 6) << name(c) << ": every pass counted, CPU and GPU";
    const int64_t P = y32.size(2) * y32.size(3);
    check(yg, y32, ybf, ops::conv2d_forward(abs64(x), abs64(w), Tensor(), o), c.Cin * c.k * c.k, true,
          name(c) + " forward");
    check(gxg, gx32, gxbf, ops::conv2d_backward_data(abs64(gy), abs64(w), x.shape(), o), c.Cout * c.k * c.k, true,
          name(c) + " backward-data");
    check(gwg, gw32, gwbf, ops::conv2d_backward_weight(abs64(gy), abs64(x), w.shape(), o), c.N * P, true,
          name(c) + " backward-weight");
  }
}

// The bias is not rounded: it is added in float32 to the widened bf16
// convolution, so the result is that convolution plus the bias, bit for bit.
TEST(Bf16CudaConv2d, BiasIsAddedInFloat32AfterTheRoundedConvolution) {
  REQUIRE_BF16_GPU();
  const ConvCase c = kConvCases[2];
  const ops::Conv2dOptions o{c.stride, c.pad};
  const Tensor x = rnd({c.N, c.Cin, c.H, c.H}, 4).to(kGpu), w = rnd({c.Cout, c.Cin, c.k, c.k}, 5).to(kGpu);
  const Tensor b = rnd({c.Cout}, 6);
  Tensor with_bias, without;
  {
    AutocastGuard on;
    with_bias = ops::conv2d_forward(x, w, b.to(kGpu), o);
    without = ops::conv2d_forward(x, w, Tensor(), o);
  }
  const std::vector<float> yb = with_bias.to(Device::cpu()).to_vector<float>();
  std::vector<float> y = without.to(Device::cpu()).to_vector<float>();
  const std::vector<float> bias = b.to_vector<float>();
  const int64_t P = without.size(2) * without.size(3);
  ASSERT_TRUE(all_bf16(y));
  for (size_t i = 0; i < y.size(); ++i) y[i] += bias[(i / P) % c.Cout];
  EXPECT_EQ(yb, y);
}

// A conv2d made under autocast runs its backward in bf16 on the GPU too, even
// when backward() runs after the guard has ended, and one made without it in
// float32 even when backward() runs under a guard. cuDNN's bf16 output makes
// the precision visible: every bf16 gradient is a bf16 value.
TEST(Bf16CudaConv2d, BackwardRunsInThePrecisionOfItsForward) {
  REQUIRE_BF16_GPU();
  const ConvCase c = kConvCases[1];
  const ops::Conv2dOptions o{c.stride, c.pad};
  const Tensor x = rnd({c.N, c.Cin, c.H, c.H}, 7).to(kGpu), w = rnd({c.Cout, c.Cin, c.k, c.k}, 8).to(kGpu);
  const Tensor b = rnd({c.Cout}, 9).to(kGpu);
  const Tensor gy = rnd({c.N, c.Cout, c.H, c.H}, 10).to(kGpu);
  auto grads = [&](bool forward_bf16, bool backward_bf16) {
    Tensor xv = x.detach().set_requires_grad(), wv = w.detach().set_requires_grad();
    Tensor bv = b.detach().set_requires_grad();
    Tensor y;
    {
      AutocastGuard f(forward_bf16);
      y = ops::conv2d(xv, wv, bv, o);
    }
    AutocastGuard g(backward_bf16);
    backward(ops::sum(ops::mul(y, gy)));
    return std::array<std::vector<float>, 3>{xv.grad().to(Device::cpu()).to_vector<float>(),
                                             wv.grad().to(Device::cpu()).to_vector<float>(),
                                             bv.grad().to(Device::cpu()).to_vector<float>()};
  };
  std::vector<float> gx_bf, gw_bf;
  {
    AutocastGuard on;
    gx_bf = ops::conv2d_backward_data(gy, w, x.shape(), o).to(Device::cpu()).to_vector<float>();
    gw_bf = ops::conv2d_backward_weight(gy, x, w.shape(), o).to(Device::cpu()).to_vector<float>();
  }
  const auto bf = grads(true, false), fp = grads(false, true);
  // Deterministic mode (the default): the same plan and algorithm give the same bits.
  EXPECT_EQ(bf[0], gx_bf);
  EXPECT_EQ(bf[1], gw_bf);
  EXPECT_TRUE(all_bf16(bf[0]) && all_bf16(bf[1])) << "the bf16 forward's gradients were not computed in bf16";
  EXPECT_FALSE(all_bf16(fp[0])) << "the float32 forward's gradient was computed in bf16";
  EXPECT_EQ(fp[0], ops::conv2d_backward_data(gy, w, x.shape(), o).to(Device::cpu()).to_vector<float>());
  EXPECT_EQ(bf[2], fp[2]) << "the bias gradient is a float32 sum in both";
}

TEST(Bf16CudaMatmul, AllFourTransposesMatchTheCpu) {
  REQUIRE_BF16_GPU();
  const int64_t M = 37, K = 150, N = 29;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const Tensor a = ta ? rnd({K, M}, 11) : rnd({M, K}, 11), b = tb ? rnd({N, K}, 12) : rnd({K, N}, 12);
      const std::string what = "matmul ta " + std::to_string(ta) + " tb " + std::to_string(tb);
      const Tensor cpu32 = ops::matmul(a, b, ta, tb), S = ops::matmul(abs64(a), abs64(b), ta, tb);
      Tensor cpu_bf16, gpu;
      {
        AutocastGuard on;
        cpu_bf16 = ops::matmul(a, b, ta, tb);
        gpu = ops::matmul(a.to(kGpu), b.to(kGpu), ta, tb);
      }
      check(gpu, cpu32, cpu_bf16, S, K, false, what);
      // The bound can tell: the GPU's float32 product (TF32 off) falls outside it.
      cuda::Tf32Scope full_fp32(false);
      EXPECT_GT(outside_sum_bound(ops::matmul(a.to(kGpu), b.to(kGpu), ta, tb), cpu_bf16, S, K), 0) << what;
    }
}

// linear's forward and both gradients, with backward() called after the
// guard has ended: the backward keeps the forward's precision on the GPU too.
TEST(Bf16CudaLinear, ForwardAndGradientsMatchTheCpu) {
  REQUIRE_BF16_GPU();
  const int64_t B = 24, In = 130, Out = 40;
  const Tensor x = rnd({B, In}, 13), w = rnd({Out, In}, 14), bias = rnd({Out}, 15), g = rnd({B, Out}, 16);
  auto run = [&](const Device& dev, bool bf16) {
    Tensor xv = x.to(dev).detach().set_requires_grad(), wv = w.to(dev).detach().set_requires_grad();
    Tensor y;
    {
      AutocastGuard on(bf16);
      y = ops::linear(xv, wv, bias.to(dev));
    }
    backward(ops::sum(ops::mul(y, g.to(dev))));
    return std::array<Tensor, 3>{y, xv.grad(), wv.grad()};
  };
  const auto gpu = run(kGpu, true), cpu_bf16 = run(Device::cpu(), true), cpu32 = run(Device::cpu(), false);
  // y = x wᵀ + b (length In), dx = g w (length Out), dw = gᵀ x (length B).
  const Tensor Sy = ops::matmul(abs64(x), abs64(w), false, true), Sx = ops::matmul(abs64(g), abs64(w)),
               Sw = ops::matmul(abs64(g), abs64(x), true, false);
  check(gpu[0], cpu32[0], cpu_bf16[0], Sy, In, false, "linear forward");
  check(gpu[1], cpu32[1], cpu_bf16[1], Sx, Out, false, "linear dx");
  check(gpu[2], cpu32[2], cpu_bf16[2], Sw, B, false, "linear dw");
  cuda::Tf32Scope full_fp32(false);
  const auto gpu32 = run(kGpu, false);
  EXPECT_GT(outside_sum_bound(gpu32[1], cpu_bf16[1], Sx, Out), 0) << "the bound cannot tell float32 from bf16 (dx)";
  EXPECT_GT(outside_sum_bound(gpu32[2], cpu_bf16[2], Sw, B), 0) << "the bound cannot tell float32 from bf16 (dw)";
}
