// Every op's backward against finite differences in float64.
#include "tests/gradcheck.h"

using namespace advcl;
using advcl::testing::expect_gradients_match;
using advcl::testing::random_tensor;

namespace {
Tensor T(const Shape& s, uint32_t seed, double lo = -1, double hi = 1) { return random_tensor(s, seed, lo, hi); }
}  // namespace

TEST(GradCheck, BinaryBroadcast) {
  auto a = [] { return T({2, 3, 4, 5}, 1); };
  auto b = [] { return T({1, 3, 1, 1}, 2, 0.5, 2); };
  expect_gradients_match([](auto& v) { return ops::add(v[0], v[1]); }, {a(), b()});
  expect_gradients_match([](auto& v) { return ops::sub(v[0], v[1]); }, {a(), b()});
  expect_gradients_match([](auto& v) { return ops::mul(v[0], v[1]); }, {a(), b()});
  expect_gradients_match([](auto& v) { return ops::div(v[0], v[1]); }, {a(), b()});
  expect_gradients_match([](auto& v) { return ops::mul(v[0], v[1]); }, {T({4, 6}, 3), T({6}, 4)});
  expect_gradients_match([](auto& v) { return ops::minimum(v[0], v[1]); }, {T({4, 6}, 5), T({4, 6}, 6)});
  expect_gradients_match([](auto& v) { return ops::maximum(v[0], v[1]); }, {T({4, 6}, 7), T({1, 6}, 8)});
}

TEST(GradCheck, Unary) {
  Tensor x = T({3, 7}, 10);
  Tensor pos = T({3, 7}, 11, 0.2, 3);
  expect_gradients_match([](auto& v) { return ops::exp(v[0]); }, {x});
  expect_gradients_match([](auto& v) { return ops::log(v[0]); }, {pos});
  expect_gradients_match([](auto& v) { return ops::sqrt(v[0]); }, {pos});
  expect_gradients_match([](auto& v) { return ops::pow(v[0], 3.0); }, {pos});
  expect_gradients_match([](auto& v) { return ops::abs(v[0]); }, {x});
  expect_gradients_match([](auto& v) { return ops::relu(v[0]); }, {x});
  expect_gradients_match([](auto& v) { return ops::neg(v[0]); }, {x});
  expect_gradients_match([](auto& v) { return ops::clamp(v[0], -0.5, 0.5); }, {x});
  expect_gradients_match([](auto& v) { return ops::mul(ops::add(v[0], 2.0), 3.0); }, {x});
  expect_gradients_match([](auto& v) { return ops::div(ops::rsub(v[0], 1.0), 4.0); }, {x});
  expect_gradients_match([](auto& v) { return ops::mul(ops::sign(v[0]), v[0]); }, {x});  // sign' = 0
}

TEST(GradCheck, Reductions) {
  Tensor x = T({3, 4, 5}, 20);
  for (int64_t d = 0; d < 3; ++d) {
    expect_gradients_match([d](auto& v) { return ops::sum(v[0], d); }, {x});
    expect_gradients_match([d](auto& v) { return ops::mean(v[0], d, true); }, {x});
    expect_gradients_match([d](auto& v) { return ops::max(v[0], d); }, {x});
    expect_gradients_match([d](auto& v) { return ops::min(v[0], d); }, {x});
  }
  expect_gradients_match([](auto& v) { return ops::sum(v[0]); }, {x});
  expect_gradients_match([](auto& v) { return ops::mean(v[0]); }, {x});
  expect_gradients_match([](auto& v) { return ops::topk(v[0], 3).values; }, {T({4, 9}, 21)});
  expect_gradients_match([](auto& v) { return ops::global_avg_pool(v[0]); }, {T({2, 3, 4, 4}, 22)});
  expect_gradients_match([](auto& v) { return ops::l2_normalize(v[0]); }, {T({5, 8}, 23)});
}

TEST(GradCheck, MatmulAndLinear) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = ta ? T({4, 3}, 30) : T({3, 4}, 30);
      Tensor b = tb ? T({5, 4}, 31) : T({4, 5}, 31);
      expect_gradients_match([ta, tb](auto& v) { return ops::matmul(v[0], v[1], ta, tb); }, {a, b});
    }
  // f fᵀ with the same tensor on both sides: gradients from both uses add up.
  expect_gradients_match([](auto& v) { return ops::matmul(v[0], v[0], false, true); }, {T({4, 6}, 32)});
  expect_gradients_match([](auto& v) { return ops::linear(v[0], v[1], v[2]); }, {T({3, 5}, 33), T({4, 5}, 34), T({4}, 35)});
  expect_gradients_match([](auto& v) { return ops::linear(v[0], v[1]); }, {T({3, 5}, 36), T({4, 5}, 37)});
}

TEST(GradCheck, SoftmaxFamily) {
  Tensor x = T({4, 6}, 40, -3, 3);
  expect_gradients_match([](auto& v) { return ops::softmax(v[0]); }, {x});
  expect_gradients_match([](auto& v) { return ops::log_softmax(v[0]); }, {x});
  Tensor labels = Tensor::from_vector<int64_t>({2, -1, 0, 5}, {4});
  expect_gradients_match([labels](auto& v) { return ops::cross_entropy(v[0], labels, ops::Reduction::Mean); }, {x});
  expect_gradients_match([labels](auto& v) { return ops::cross_entropy(v[0], labels, ops::Reduction::Sum); }, {x});
  Tensor logp = ops::log_softmax(T({4, 6}, 41, -2, 2)).detach();
  Tensor p = ops::softmax(T({4, 6}, 42, -2, 2)).detach();
  expect_gradients_match([](auto& v) { return ops::kl_div(v[0], v[1], ops::KLReduction::Sum); }, {logp, p});
  expect_gradients_match([](auto& v) { return ops::kl_div(v[0], v[1], ops::KLReduction::BatchMean); }, {logp, p});
  // The TRADES form: KL(softmax(a) || softmax(b)) with gradients through both sides.
  expect_gradients_match(
      [](auto& v) { return ops::kl_div(ops::log_softmax(v[1]), ops::softmax(v[0]), ops::KLReduction::Sum); },
      {T({3, 5}, 43), T({3, 5}, 44)});
}

TEST(GradCheck, Conv2d) {
  struct Case {
    Shape x, w;
    int stride, pad;
    bool bias;
  };
  for (const Case& c : {Case{{2, 3, 6, 6}, {4, 3, 3, 3}, 1, 1, true}, Case{{2, 3, 7, 7}, {4, 3, 3, 3}, 2, 1, false},
                        Case{{1, 4, 5, 5}, {2, 4, 1, 1}, 2, 0, false}, Case{{2, 2, 5, 4}, {3, 2, 3, 2}, 1, 0, true}}) {
    ops::Conv2dOptions opt{c.stride, c.pad};
    std::vector<Tensor> in{T(c.x, 50), T(c.w, 51)};
    if (c.bias) in.push_back(T({c.w[0]}, 52));
    expect_gradients_match([opt](auto& v) { return ops::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Tensor(), opt); }, in);
  }
}

TEST(GradCheck, BatchNorm) {
  for (Shape s : {Shape{4, 3, 2, 3}, Shape{6, 5}}) {
    int64_t C = s[1];
    Tensor x = T(s, 60, -2, 2), w = T({C}, 61, 0.5, 1.5), b = T({C}, 62);
    expect_gradients_match(
        [C](auto& v) {
          Tensor rm = Tensor::zeros({C}, DType::Float64), rv = Tensor::ones({C}, DType::Float64);
          return ops::batch_norm(v[0], v[1], v[2], rm, rv, {true, 0.1, 1e-5});
        },
        {x, w, b});
    Tensor rm = T({C}, 63), rv = T({C}, 64, 0.5, 2);
    expect_gradients_match([rm, rv](auto& v) { return ops::batch_norm(v[0], v[1], v[2], rm, rv, {false, 0.1, 1e-5}); },
                           {x, w, b});
  }
}

TEST(GradCheck, ShapeOps) {
  expect_gradients_match([](auto& v) { return ops::reshape(v[0], {-1, 6}); }, {T({2, 3, 4}, 70)});
  expect_gradients_match([](auto& v) { return ops::cat({v[0], v[1], v[0]}); }, {T({2, 3}, 71), T({1, 3}, 72)});
  expect_gradients_match([](auto& v) { return ops::slice(v[0], 1, 3); }, {T({4, 3}, 73)});
  Tensor idx = Tensor::from_vector<int64_t>({2, 0, 2}, {3});
  expect_gradients_match([idx](auto& v) { return ops::index_select(v[0], idx); }, {T({4, 3}, 74)});
}

TEST(GradCheck, FftHighpass) {
  expect_gradients_match([](auto& v) { return ops::fft_highpass(v[0], 3); }, {T({2, 2, 8, 8}, 80)});
  expect_gradients_match([](auto& v) { return ops::fft_highpass(v[0], 2.5); }, {T({1, 1, 7, 6}, 81)});
}

// The checker itself must catch a wrong derivative: an op whose backward is
// off by a factor of 2 has to fail it.
#include <gtest/gtest-spi.h>

TEST(GradCheck, CatchesAWrongBackward) {
  auto doubled_wrongly = [](const std::vector<Tensor>& v) {
    Tensor y;
    {
      NoGradGuard no_grad;
      y = ops::mul(v[0], 3.0);
    }
    if (needs_graph({v[0]}))
      record(y, "wrong", {v[0]}, [](const Tensor& g, const Needs&) { return std::vector<Tensor>{ops::mul(g, 6.0)}; });
    return y;
  };
  EXPECT_NONFATAL_FAILURE(expect_gradients_match(doubled_wrongly, {T({3, 3}, 90)}), "worst relative error");
}
