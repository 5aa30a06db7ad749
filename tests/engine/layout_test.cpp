// Channels-last activations (engine/ops/layout.h): the copies between the two
// layouts move every element to its place and back; conv2d, batch norm and
// global average pooling on [N, H, W, C] give, value for value, what their
// NCHW forms give on the same data (forward, every gradient, running
// statistics), on each path: oneDNN float32 (native NHWC), the BLAS path and
// float64 (which transpose around their NCHW convolution), and bf16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/bf16_test_util.h"
#include "tests/gradcheck.h"
#include "tests/tensor_compare.h"

using namespace advcl;
using advcl::testing::expect_gradients_match;
using advcl::testing::random_tensor;
using advcl::testing::scaled_diff;

namespace {

struct ConvCase {
  int64_t N, Cin, H, W, Cout, k;
  int stride, pad;
  bool bias;
};

// The stem, a 3x3, the strided 3x3, the strided 1x1 shortcut, and an odd
// shape with a bias.
const std::vector<ConvCase> kConvCases = {{2, 3, 8, 8, 16, 3, 1, 1, false},
                                          {2, 16, 8, 8, 16, 3, 1, 1, false},
                                          {3, 16, 8, 8, 32, 3, 2, 1, false},
                                          {3, 16, 8, 8, 32, 1, 2, 0, false},
                                          {2, 5, 7, 6, 3, 3, 2, 1, true}};

// conv2d in both layouts on the same data, forward and the three gradients,
// compared within tol (relative to each result's scale).
void expect_conv_layouts_agree(DType dt, double tol) {
  for (const ConvCase& c : kConvCases) {
    SCOPED_TRACE("conv " + std::to_string(c.Cin) + "->" + std::to_string(c.Cout) + " k" + std::to_string(c.k) +
                 " s" + std::to_string(c.stride));
    Tensor x = random_tensor({c.N, c.Cin, c.H, c.W}, 1).to(dt);
    Tensor w = random_tensor({c.Cout, c.Cin, c.k, c.k}, 2, -0.3, 0.3).to(dt);
    Tensor b = c.bias ? random_tensor({c.Cout}, 3).to(dt) : Tensor();
    ops::Conv2dOptions first{c.stride, c.pad, false}, last{c.stride, c.pad, true};

    Tensor x1 = x.clone().set_requires_grad(), w1 = w.clone().set_requires_grad();
    Tensor b1 = c.bias ? b.clone().set_requires_grad() : Tensor();
    Tensor y1 = ops::conv2d(x1, w1, b1, first);
    Tensor up = random_tensor(y1.shape(), 4).to(dt);
    std::vector<Tensor> want = grad(y1, c.bias ? std::vector<Tensor>{x1, w1, b1} : std::vector<Tensor>{x1, w1}, up);

    Tensor x2 = ops::to_channels_last(x).set_requires_grad(), w2 = w.clone().set_requires_grad();
    Tensor b2 = c.bias ? b.clone().set_requires_grad() : Tensor();
    Tensor y2 = ops::conv2d(x2, w2, b2, last);
    ASSERT_EQ(y2.shape(), (Shape{y1.size(0), y1.size(2), y1.size(3), y1.size(1)}));
    std::vector<Tensor> got =
        grad(y2, c.bias ? std::vector<Tensor>{x2, w2, b2} : std::vector<Tensor>{x2, w2}, ops::to_channels_last(up));

    EXPECT_LE(scaled_diff(ops::to_channels_first(y2), y1), tol) << "output";
    EXPECT_LE(scaled_diff(ops::to_channels_first(got[0]), want[0]), tol) << "input gradient";
    EXPECT_LE(scaled_diff(got[1], want[1]), tol) << "weight gradient";
    if (c.bias) EXPECT_LE(scaled_diff(got[2], want[2]), tol) << "bias gradient";
  }
}

}  // namespace

TEST(ChannelsLast, CopiesPutEveryElementInItsPlaceAndBack) {
  Tensor x = random_tensor({2, 3, 4, 5}, 7);
  Tensor y = ops::to_channels_last(x);
  ASSERT_EQ(y.shape(), (Shape{2, 4, 5, 3}));
  std::vector<double> a = x.to_vector<double>(), b = y.to_vector<double>();
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 4; ++h)
        for (int w = 0; w < 5; ++w) ASSERT_EQ(b[((n * 4 + h) * 5 + w) * 3 + c], a[((n * 3 + c) * 4 + h) * 5 + w]);
  EXPECT_EQ(ops::to_channels_first(y).to_vector<double>(), a);
  // Larger than one 32x32 tile in both directions.
  Tensor big = random_tensor({2, 40, 6, 7}, 8);
  EXPECT_EQ(ops::to_channels_first(ops::to_channels_last(big)).to_vector<double>(), big.to_vector<double>());
}

TEST(ChannelsLast, CopiesAreDifferentiable) {
  expect_gradients_match([](const std::vector<Tensor>& in) { return ops::to_channels_last(in[0]); },
                         {random_tensor({2, 3, 2, 4}, 9)});
  expect_gradients_match([](const std::vector<Tensor>& in) { return ops::to_channels_first(in[0]); },
                         {random_tensor({2, 2, 4, 3}, 10)});
}

TEST(ChannelsLast, Conv2dOnOneDnnMatchesNchw) {
  ASSERT_EQ(ops::cpu_path(), ops::CpuPath::OneDnn);
  expect_conv_layouts_agree(DType::Float32, 2e-6);
}

TEST(ChannelsLast, Conv2dOnTheBlasPathAndInFloat64MatchesNchw) {
  expect_conv_layouts_agree(DType::Float64, 1e-14);
  ops::set_cpu_path(ops::CpuPath::Im2colBlas);
  expect_conv_layouts_agree(DType::Float32, 2e-6);
  ops::set_cpu_path(ops::CpuPath::OneDnn);
}

TEST(ChannelsLast, Conv2dInBf16MatchesNchw) {
  SKIP_WITHOUT_BF16();
  autocast::AutocastGuard bf16(true);
  // Both layouts round the same operands to bf16; only the float32 sums'
  // order differs.
  expect_conv_layouts_agree(DType::Float32, 1e-5);
}

TEST(ChannelsLast, Conv2dGradientsInFloat64MatchFiniteDifferences) {
  expect_gradients_match(
      [](const std::vector<Tensor>& in) { return ops::conv2d(in[0], in[1], in[2], ops::Conv2dOptions{2, 1, true}); },
      {random_tensor({1, 5, 4, 3}, 11), random_tensor({2, 3, 3, 3}, 12), random_tensor({2}, 13)});
}

TEST(ChannelsLast, Conv2dChecksItsChannels) {
  Tensor x = Tensor::zeros({1, 3, 4, 4}, DType::Float32);  // NCHW shape given as channels-last: 4 channels
  Tensor w = Tensor::zeros({8, 3, 3, 3}, DType::Float32);
  try {
    ops::conv2d(x, w, Tensor(), ops::Conv2dOptions{1, 1, true});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("channels last"), std::string::npos) << e.what();
  }
}

TEST(ChannelsLast, BatchNormMatchesNchw) {
  for (DType dt : {DType::Float64, DType::Float32})
    for (bool training : {true, false})
      for (int64_t group_rows : {0, 2}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (training ? " training" : " eval") + " groups " +
                     std::to_string(group_rows));
        const int64_t C = 6;
        Tensor x = random_tensor({10, C, 3, 5}, 20, -2, 3).to(dt);
        auto params = [&](uint32_t seed) {
          return ops::BatchNormParams{random_tensor({C}, seed, 0.5, 1.5).to(dt).set_requires_grad(),
                                      random_tensor({C}, seed + 1).to(dt).set_requires_grad(),
                                      random_tensor({C}, seed + 2).to(dt), random_tensor({C}, seed + 3, 0.5, 2).to(dt)};
        };
        auto copy = [](const ops::BatchNormParams& p) {
          return ops::BatchNormParams{p.weight.clone().set_requires_grad(), p.bias.clone().set_requires_grad(),
                                      p.running_mean.clone(), p.running_var.clone()};
        };
        ops::BatchNormViews first{{params(30), params(40)}, {0, 1}, group_rows};
        ops::BatchNormViews last{{copy(first.sets[0]), copy(first.sets[1])}, {0, 1}, group_rows};
        ops::BatchNormOptions opt;
        opt.training = training;

        Tensor x1 = x.clone().set_requires_grad();
        Tensor y1 = ops::batch_norm_views(x1, first, opt);
        Tensor up = random_tensor(y1.shape(), 50).to(dt);
        std::vector<Tensor> want = grad(y1, {x1, first.sets[0].weight, first.sets[1].bias}, up);

        opt.channels_last = true;
        Tensor x2 = ops::to_channels_last(x).set_requires_grad();
        Tensor y2 = ops::batch_norm_views(x2, last, opt);
        std::vector<Tensor> got = grad(y2, {x2, last.sets[0].weight, last.sets[1].bias}, ops::to_channels_last(up));

        const double tol = dt == DType::Float64 ? 1e-13 : 2e-6;
        EXPECT_LE(scaled_diff(ops::to_channels_first(y2), y1), tol) << "output";
        EXPECT_LE(scaled_diff(ops::to_channels_first(got[0]), want[0]), tol) << "input gradient";
        EXPECT_LE(scaled_diff(got[1], want[1]), tol) << "weight gradient";
        EXPECT_LE(scaled_diff(got[2], want[2]), tol) << "bias gradient";
        for (int s = 0; s < 2; ++s) {
          EXPECT_LE(scaled_diff(last.sets[s].running_mean, first.sets[s].running_mean), tol) << "running mean";
          EXPECT_LE(scaled_diff(last.sets[s].running_var, first.sets[s].running_var), tol) << "running var";
        }
      }
}

TEST(ChannelsLast, BatchNormStatisticsMatchNchw) {
  Tensor x = random_tensor({4, 5, 6, 7}, 60, -1, 4);
  ops::ChannelStats a = ops::batch_norm_stats(x), b = ops::batch_norm_stats(ops::to_channels_last(x), true);
  EXPECT_EQ(a.count, b.count);
  EXPECT_LE(scaled_diff(b.sum, a.sum), 1e-14);
  EXPECT_LE(scaled_diff(b.sum_sq, a.sum_sq), 1e-14);
}

TEST(ChannelsLast, BatchNormGradientsInFloat64MatchFiniteDifferences) {
  ops::BatchNormOptions opt;
  opt.channels_last = true;
  expect_gradients_match(
      [&](const std::vector<Tensor>& in) {
        return ops::batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), opt);
      },
      {random_tensor({3, 2, 4, 5}, 70), random_tensor({5}, 71, 0.5, 1.5), random_tensor({5}, 72)});
}

TEST(ChannelsLast, GlobalAveragePoolMatchesNchw) {
  Tensor x = random_tensor({3, 4, 5, 6}, 80);
  EXPECT_LE(scaled_diff(ops::global_avg_pool(ops::to_channels_last(x), true), ops::global_avg_pool(x)), 1e-15);
}
