// ResNet-18 keeps its activations channels-last where its convolutions run on
// oneDNN (nn/resnet.h, ActivationLayout): the features and every gradient
// equal the channels-first network's on the same weights and images, in
// float32 and under bf16 autocast, with several BN statistic sets and views;
// Auto picks channels-last for float32 on the CPU and channels-first for
// float64 (no oneDNN) or the BLAS path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/counters.h"
#include "engine/ops.h"
#include "nn/resnet.h"
#include "tests/bf16_test_util.h"
#include "tests/tensor_compare.h"

using namespace advcl;

namespace {

nn::ResNetOptions options(nn::ActivationLayout layout) {
  nn::ResNetOptions o;
  o.width = 4;
  o.num_bn_sets = 3;
  o.seed = 11;
  o.layout = layout;
  return o;
}

// Relative to each tensor's own scale (gradients here are far below 1).
double rel_diff(const Tensor& a, const Tensor& b) { return advcl::testing::scaled_diff(a, b, 1e-30); }

// Features of two views (BN sets 0 and 2), their gradient with respect to the
// images, and every parameter's gradient, for one layout.
struct Pass {
  Tensor features, image_grad;
  std::vector<Tensor> param_grads;
};

Pass run(nn::ActivationLayout layout, const Tensor& images, const Tensor& up) {
  nn::ResNet18 net(options(layout));
  net.train();
  Tensor x = images.clone().set_requires_grad();
  Tensor f = net.features(x, nn::BnSets{0, 2});
  std::vector<Tensor> leaves{x};
  for (const nn::NamedTensor& p : net.named_parameters()) leaves.push_back(p.tensor);
  std::vector<Tensor> g = grad(f, leaves, up);
  return {f, g[0], std::vector<Tensor>(g.begin() + 1, g.end())};
}

void expect_layouts_agree(double tol) {
  Tensor images = ops::rand_uniform({8, 3, 16, 16}, {5, 0, 0, 0}, 0, 1);
  Tensor up = ops::rand_uniform({8, 32}, {6, 0, 0, 0}, -1, 1);
  counters::reset();
  Pass first = run(nn::ActivationLayout::ChannelsFirst, images, up);
  EXPECT_EQ(counters::get("layout.to_channels_last"), 0);
  Pass last = run(nn::ActivationLayout::ChannelsLast, images, up);
  // One copy in (the images), one out (their gradient); none per layer.
  EXPECT_EQ(counters::get("layout.to_channels_last"), 1);
  EXPECT_EQ(counters::get("layout.to_channels_first"), 1);
  EXPECT_LE(rel_diff(last.features, first.features), tol) << "features";
  EXPECT_LE(rel_diff(last.image_grad, first.image_grad), tol) << "image gradient";
  ASSERT_EQ(last.param_grads.size(), first.param_grads.size());
  for (size_t i = 0; i < first.param_grads.size(); ++i)
    EXPECT_LE(rel_diff(last.param_grads[i], first.param_grads[i]), tol) << "parameter gradient " << i;
}

}  // namespace

TEST(ResNetLayout, ChannelsLastEqualsChannelsFirstInFloat32) { expect_layouts_agree(1e-5); }

TEST(ResNetLayout, ChannelsLastEqualsChannelsFirstInBf16) {
  SKIP_WITHOUT_BF16();
  autocast::AutocastGuard bf16(true);
  // Both round the same operands to bf16; the float32 sums' order may
  // differ, and a value near a bf16 midpoint then rounds the other way in
  // the next layer (measured here: 5e-8 in the features).
  expect_layouts_agree(1e-3);
}

TEST(ResNetLayout, AutoIsChannelsLastWhereConvolutionsRunOnOneDnn) {
  nn::ResNet18 net(options(nn::ActivationLayout::Auto));
  Tensor x32 = Tensor::zeros({2, 3, 8, 8}, DType::Float32);
  EXPECT_TRUE(net.channels_last_for(x32));
  EXPECT_FALSE(net.channels_last_for(x32.to(DType::Float64)));
  ops::set_cpu_path(ops::CpuPath::Im2colBlas);
  EXPECT_FALSE(net.channels_last_for(x32));
  {
    autocast::AutocastGuard bf16(true);  // bf16 runs on oneDNN whatever the path
    EXPECT_TRUE(net.channels_last_for(x32));
  }
  ops::set_cpu_path(ops::CpuPath::OneDnn);
  EXPECT_FALSE(nn::ResNet18(options(nn::ActivationLayout::ChannelsFirst)).channels_last_for(x32));
  EXPECT_TRUE(nn::ResNet18(options(nn::ActivationLayout::ChannelsLast)).channels_last_for(x32.to(DType::Float64)));
}
