// Mixed precision (engine/autocast.h): the bf16 rounding, the policy table and
// its per-thread guard, and every op that runs in bf16 (conv2d forward,
// backward-data, backward-weight; matmul and linear, forward and backward)
// against float64 references. Two tolerances, both stated per element as a
// fraction of S = sum |a_k b_k| over the element's dot product:
//   * against float32 on the unrounded inputs (what the user compares with):
//     |bf16 - exact| <= (2^-7 + 2^-16) S (+ float32 sum slack), since bf16
//     keeps 8 significant bits, so rounding each of a and b moves it by at
//     most 2^-8 of itself and their product by (2^-8 + 2^-8 + 2^-16) of it;
//   * against float64 on the bf16-rounded inputs: only the float32 sums
//     differ, |bf16 - exact(rounded)| <= kSumTol S. A float32 op on the
//     unrounded inputs fails this one (checked too), so it proves that the
//     op really rounded its inputs to bf16.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>

#include "advcl/pretrain/losses.h"
#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/counters.h"
#include "engine/cpu_features.h"
#include "engine/ops.h"
#include "tests/bf16_test_util.h"

using namespace advcl;
using autocast::AutocastGuard;

namespace {

constexpr double kBf16Tol = 1.01 * (1.0 / 128 + 1.0 / 65536);  // 2^-7 + 2^-16, and 1% for the float32 sums
constexpr double kSumTol = 2e-6;          // float32 accumulation of bf16 products

Tensor rnd(const Shape& s, uint32_t step) { return ops::rand_uniform(s, {15, 0, step, 0}, -1, 1, DType::Float32); }

// t (float32) in float64, each value rounded to bf16 first when `round`.
Tensor f64(const Tensor& t, bool round, bool absolute = false) {
  std::vector<float> v = t.to_vector<float>();
  std::vector<double> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    double x = round ? autocast::round_bf16(v[i]) : v[i];
    r[i] = absolute ? std::fabs(x) : x;
  }
  return Tensor::from_vector(r, t.shape());
}

struct Worst {
  double vs_rounded = 0, fp32_vs_rounded = 0;
};

// Checks got (the bf16 op) element by element; returns the largest errors
// relative to S against the rounded-inputs reference (of got and of fp32).
Worst check(const Tensor& got, const Tensor& fp32, const Tensor& exact, const Tensor& exact_rounded,
            const Tensor& abs_sum, const std::string& what) {
  std::vector<float> g = got.to_vector<float>(), f = fp32.to_vector<float>();
  std::vector<double> e = exact.to_vector<double>(), er = exact_rounded.to_vector<double>(),
                      s = abs_sum.to_vector<double>();
  EXPECT_EQ(g.size(), e.size()) << what;
  Worst w;
  size_t bad = 0;
  for (size_t i = 0; i < g.size() && bad < 5; ++i) {
    double S = s[i] + 1e-30;
    if (std::fabs(g[i] - e[i]) > kBf16Tol * S + 1e-7) {
      ADD_FAILURE() << what << " element " << i << ": bf16 " << g[i] << " vs float32 " << e[i] << ", S " << S;
      ++bad;
    }
    w.vs_rounded = std::max(w.vs_rounded, std::fabs(g[i] - er[i]) / S);
    w.fp32_vs_rounded = std::max(w.fp32_vs_rounded, std::fabs(f[i] - er[i]) / S);
  }
  if (std::getenv("ADVCL_BF16_TEST_VERBOSE"))
    std::fprintf(stderr, "%s: bf16 vs rounded %.3g, fp32 vs rounded %.3g\n", what.c_str(), w.vs_rounded, w.fp32_vs_rounded);
  EXPECT_LE(w.vs_rounded, kSumTol) << what << ": not float64 on bf16-rounded inputs up to float32 sums";
  EXPECT_GT(w.fp32_vs_rounded, kSumTol) << what << ": this check cannot tell bf16 from float32";
  return w;
}

struct ConvCase {
  int64_t N, Cin, H, Cout, k;
  int stride, pad;
};

// The geometries of ResNet-18 on 32x32 images: the stem (Cin 3), a 3x3 block
// convolution, a strided one and the 1x1 strided shortcut.
const ConvCase kConvCases[] = {
    {2, 3, 12, 16, 3, 1, 1}, {2, 32, 9, 24, 3, 1, 1}, {3, 16, 10, 32, 3, 2, 1}, {2, 16, 8, 32, 1, 2, 0}};

std::string name(const ConvCase& c) {
  return "conv " + std::to_string(c.Cin) + "->" + std::to_string(c.Cout) + " k" + std::to_string(c.k) + " s" +
         std::to_string(c.stride) + " p" + std::to_string(c.pad);
}

}  // namespace

TEST(Bf16Rounding, NearestWithTiesToEvenAndSpecialValues) {
  EXPECT_EQ(autocast::round_bf16(1.0f), 1.0f);
  // bf16 keeps 7 fraction bits: its spacing at 1 is 2^-7.
  const float ulp = std::ldexp(1.0f, -7);
  EXPECT_EQ(autocast::round_bf16(1 + ulp / 2), 1.0f) << "a tie goes to the even neighbour (1)";
  EXPECT_EQ(autocast::round_bf16(1 + 3 * ulp / 2), 1 + 2 * ulp) << "a tie goes to the even neighbour (1 + 2^-6)";
  EXPECT_EQ(autocast::round_bf16(1 + ulp / 2 + std::ldexp(1.0f, -20)), 1 + ulp) << "above the tie rounds up";
  EXPECT_EQ(autocast::round_bf16(-(1 + ulp / 2 + std::ldexp(1.0f, -20))), -(1 + ulp));
  EXPECT_EQ(autocast::round_bf16(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(autocast::round_bf16(std::numeric_limits<float>::max()), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(autocast::round_bf16(std::numeric_limits<float>::quiet_NaN())));
  // A NaN whose payload sits in the dropped bits must not become infinity.
  uint32_t snan_bits = 0x7f800001u;
  float snan;
  std::memcpy(&snan, &snan_bits, sizeof snan);
  EXPECT_TRUE(std::isnan(autocast::round_bf16(snan)));
  // Random values: the result is the nearer of the two bf16 neighbours.
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-1000, 1000);
  for (int i = 0; i < 100000; ++i) {
    float x = u(gen);
    uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    uint32_t lo_bits = b & 0xffff0000u, hi_bits = lo_bits + 0x10000u;
    float lo, hi;
    std::memcpy(&lo, &lo_bits, sizeof lo);
    std::memcpy(&hi, &hi_bits, sizeof hi);
    float r = autocast::round_bf16(x);
    double dl = std::fabs(double(x) - lo), dh = std::fabs(double(x) - hi);
    float want = dl < dh ? lo : dh < dl ? hi : ((lo_bits >> 16) & 1 ? hi : lo);
    ASSERT_EQ(r, want) << "x " << x;
  }
}

TEST(AutocastPolicy, OneRulePerOpAndOnlyConvAndMatmulInBf16) {
  using autocast::Op;
  const Op all[] = {Op::Conv2d,      Op::Matmul,    Op::BatchNorm, Op::Softmax,   Op::Loss,
                    Op::L2Normalize, Op::FftHighPass, Op::Reduction, Op::SgdUpdate, Op::AttackPerturbation};
  EXPECT_EQ(std::size(autocast::kPolicy), std::size(all)) << "an op with two rules, or a rule for no op";
  for (Op op : all) EXPECT_EQ(autocast::rule(op).op, op);
  EXPECT_FALSE(autocast::enabled()) << "autocast is off by default";
  for (Op op : all) EXPECT_FALSE(autocast::runs_bf16(op));
  {
    AutocastGuard on;
    for (Op op : all)
      EXPECT_EQ(autocast::runs_bf16(op), op == Op::Conv2d || op == Op::Matmul) << autocast::rule(op).name;
    {
      AutocastGuard off(false);
      EXPECT_FALSE(autocast::runs_bf16(Op::Conv2d)) << "a nested guard turns it off";
    }
    EXPECT_TRUE(autocast::enabled()) << "the nested guard restores the outer state";
    bool other_thread = true;
    std::thread([&] { other_thread = autocast::enabled(); }).join();
    EXPECT_FALSE(other_thread) << "autocast is per thread";
  }
  EXPECT_FALSE(autocast::enabled());
}

TEST(CpuFeatures, ReportsOneDnnIsaAndNativeBf16Consistently) {
  const cpu::Bf16Support& s = cpu::bf16_support();
  EXPECT_FALSE(s.onednn_isa.empty());
  EXPECT_EQ(s.native(), s.missing().empty()) << s.missing();
  EXPECT_EQ(cpu::onednn_isa_name(0xe7), "avx512_core_bf16");
  cpu::Bf16Support none;
  none.onednn_isa = "avx2";
  EXPECT_FALSE(none.native());
  EXPECT_NE(none.missing().find("no native bf16"), std::string::npos) << none.missing();
  cpu::Bf16Support limited = none;
  limited.avx512_bf16 = true;  // the CPU has it, oneDNN is held below it
  EXPECT_FALSE(limited.native());
  EXPECT_NE(limited.missing().find("avx2"), std::string::npos) << limited.missing();
  limited.onednn_bf16 = true;
  EXPECT_TRUE(limited.native());
}

TEST(Bf16Conv2d, ForwardAgreesWithFloat32WithinBf16Tolerance) {
  SKIP_WITHOUT_BF16();
  for (const ConvCase& c : kConvCases) {
    Tensor x = rnd({c.N, c.Cin, c.H, c.H}, 1), w = rnd({c.Cout, c.Cin, c.k, c.k}, 2), b = rnd({c.Cout}, 3);
    ops::Conv2dOptions o{c.stride, c.pad};
    Tensor fp32 = ops::conv2d_forward(x, w, b, o);
    int64_t built = counters::get("onednn.conv.plan.forward.bf16");
    Tensor got;
    {
      AutocastGuard on;
      got = ops::conv2d_forward(x, w, b, o);
    }
    EXPECT_EQ(counters::get("onednn.conv.plan.forward.bf16"), built + 1) << name(c);
    EXPECT_EQ(got.dtype(), DType::Float32);
    // The bias is added in float32 (not rounded): S counts it at its size.
    Tensor bias64 = f64(b, false);
    check(got, fp32, ops::conv2d_forward(f64(x, false), f64(w, false), bias64, o),
          ops::conv2d_forward(f64(x, true), f64(w, true), bias64, o),
          ops::conv2d_forward(f64(x, true, true), f64(w, true, true), f64(b, false, true), o), name(c) + " forward");
  }
}

TEST(Bf16Conv2d, BackwardDataAndWeightAgreeWithFloat32WithinBf16Tolerance) {
  SKIP_WITHOUT_BF16();
  for (const ConvCase& c : kConvCases) {
    Tensor x = rnd({c.N, c.Cin, c.H, c.H}, 4), w = rnd({c.Cout, c.Cin, c.k, c.k}, 5);
    ops::Conv2dOptions o{c.stride, c.pad};
    Shape ys = ops::conv2d_forward(x, w, Tensor(), o).shape();
    Tensor gy = rnd(ys, 6);
    Tensor gx32 = ops::conv2d_backward_data(gy, w, x.shape(), o), gw32 = ops::conv2d_backward_weight(gy, x, w.shape(), o);
    Tensor gx, gw;
    {
      AutocastGuard on;
      gx = ops::conv2d_backward_data(gy, w, x.shape(), o);
      gw = ops::conv2d_backward_weight(gy, x, w.shape(), o);
    }
    check(gx, gx32, ops::conv2d_backward_data(f64(gy, false), f64(w, false), x.shape(), o),
          ops::conv2d_backward_data(f64(gy, true), f64(w, true), x.shape(), o),
          ops::conv2d_backward_data(f64(gy, true, true), f64(w, true, true), x.shape(), o), name(c) + " backward data");
    check(gw, gw32, ops::conv2d_backward_weight(f64(gy, false), f64(x, false), w.shape(), o),
          ops::conv2d_backward_weight(f64(gy, true), f64(x, true), w.shape(), o),
          ops::conv2d_backward_weight(f64(gy, true, true), f64(x, true, true), w.shape(), o),
          name(c) + " backward weight");
  }
}

// The graph: a conv2d made under autocast runs its backward in bf16 even when
// backward() is called after the guard has ended, and one made without it in
// float32 even when backward() runs under a guard.
TEST(Bf16Conv2d, BackwardRunsInThePrecisionOfItsForward) {
  SKIP_WITHOUT_BF16();
  const ConvCase c = kConvCases[1];
  Tensor x = rnd({c.N, c.Cin, c.H, c.H}, 7), w = rnd({c.Cout, c.Cin, c.k, c.k}, 8), b = rnd({c.Cout}, 9);
  ops::Conv2dOptions o{c.stride, c.pad};
  Tensor gy = rnd(ops::conv2d_forward(x, w, b, o).shape(), 10);
  auto grads = [&](bool forward_bf16, bool backward_bf16) {
    Tensor xv = x.detach().set_requires_grad(), wv = w.detach().set_requires_grad(), bv = b.detach().set_requires_grad();
    Tensor y;
    {
      AutocastGuard f(forward_bf16);
      y = ops::conv2d(xv, wv, bv, o);
    }
    AutocastGuard g(backward_bf16);
    backward(ops::sum(ops::mul(y, gy)));
    return std::vector<std::vector<float>>{xv.grad().to_vector<float>(), wv.grad().to_vector<float>(),
                                           bv.grad().to_vector<float>()};
  };
  Tensor gx_bf, gw_bf;
  {
    AutocastGuard on;
    gx_bf = ops::conv2d_backward_data(gy, w, x.shape(), o);
    gw_bf = ops::conv2d_backward_weight(gy, x, w.shape(), o);
  }
  auto bf = grads(true, false), fp = grads(false, true);
  EXPECT_EQ(bf[0], gx_bf.to_vector<float>());
  EXPECT_EQ(bf[1], gw_bf.to_vector<float>());
  EXPECT_EQ(fp[0], ops::conv2d_backward_data(gy, w, x.shape(), o).to_vector<float>());
  EXPECT_EQ(fp[1], ops::conv2d_backward_weight(gy, x, w.shape(), o).to_vector<float>());
  EXPECT_NE(bf[0], fp[0]);
  EXPECT_EQ(bf[2], fp[2]) << "the bias gradient is a float32 sum in both";
}

TEST(Bf16Conv2d, Float64IsNotTouched) {
  Tensor x = rnd({2, 4, 6, 6}, 11).to(DType::Float64), w = rnd({5, 4, 3, 3}, 12).to(DType::Float64);
  std::vector<double> plain = ops::conv2d_forward(x, w, Tensor(), {1, 1}).to_vector<double>();
  AutocastGuard on;
  EXPECT_EQ(ops::conv2d_forward(x, w, Tensor(), {1, 1}).to_vector<double>(), plain);
}

TEST(Bf16Matmul, AllFourTransposesForwardAndBackward) {
  SKIP_WITHOUT_BF16();
  const int64_t M = 37, K = 150, N = 29;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = ta ? rnd({K, M}, 13) : rnd({M, K}, 13), b = tb ? rnd({N, K}, 14) : rnd({K, N}, 14);
      const std::string what = "matmul ta " + std::to_string(ta) + " tb " + std::to_string(tb);
      Tensor fp32 = ops::matmul(a, b, ta, tb);
      int64_t built = counters::get("onednn.matmul.primitive.bf16");
      Tensor got;
      {
        AutocastGuard on;
        got = ops::matmul(a, b, ta, tb);
      }
      EXPECT_EQ(counters::get("onednn.matmul.primitive.bf16"), built + 1) << what;
      check(got, fp32, ops::matmul(f64(a, false), f64(b, false), ta, tb), ops::matmul(f64(a, true), f64(b, true), ta, tb),
            ops::matmul(f64(a, true, true), f64(b, true, true), ta, tb), what);
    }
}

TEST(Bf16Matmul, LinearBackwardRunsInBf16) {
  SKIP_WITHOUT_BF16();
  const int64_t B = 24, In = 130, Out = 40;
  Tensor x = rnd({B, In}, 15), w = rnd({Out, In}, 16), bias = rnd({Out}, 17), g = rnd({B, Out}, 18);
  auto grads = [&](bool bf16) {
    Tensor xv = x.detach().set_requires_grad(), wv = w.detach().set_requires_grad();
    Tensor y;
    {
      AutocastGuard on(bf16);
      y = ops::linear(xv, wv, bias);
    }
    backward(ops::sum(ops::mul(y, g)));
    return std::make_pair(xv.grad(), wv.grad());
  };
  auto [gx, gw] = grads(true);
  auto [gx32, gw32] = grads(false);
  // dx = g w, dw = gᵀ x, with g, w and x rounded to bf16.
  check(gx, gx32, ops::matmul(f64(g, false), f64(w, false)), ops::matmul(f64(g, true), f64(w, true)),
        ops::matmul(f64(g, true, true), f64(w, true, true)), "linear dx");
  check(gw, gw32, ops::matmul(f64(g, false), f64(x, false), true, false),
        ops::matmul(f64(g, true), f64(x, true), true, false),
        ops::matmul(f64(g, true, true), f64(x, true, true), true, false), "linear dw");
}

// The table's float32 ops that contain a matmul keep float32 under autocast:
// SupCon's similarity matrix (advcl/pretrain/losses.cpp), forward and gradient.
TEST(Bf16Policy, SupConStaysFloat32UnderAutocast) {
  SKIP_WITHOUT_BF16();
  std::vector<Tensor> views{rnd({16, 32}, 19), rnd({16, 32}, 20)};
  auto loss_and_grad = [&](bool bf16) {
    std::vector<Tensor> v;
    for (const Tensor& t : views) v.push_back(ops::div(t.detach(), 6.0).set_requires_grad());
    AutocastGuard g(bf16);
    Tensor loss = method::supcon_loss(v, 0.5, 0.5);
    backward(loss);
    return std::make_pair(loss.item(), v[0].grad().to_vector<float>());
  };
  auto [l32, g32] = loss_and_grad(false);
  auto [lbf, gbf] = loss_and_grad(true);
  EXPECT_EQ(lbf, l32);
  EXPECT_EQ(gbf, g32);
}
