#include <gtest/gtest.h>

#include <cmath>

#include "advcl/pretrain/losses.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace advcl;

namespace {

Tensor unit_rows(const Shape& s, uint32_t step) {
  return ops::l2_normalize(advcl::testing::random_tensor(s, step)).detach();
}

// The SupCon (SimCLR case) loss by plain loops, straight from its definition.
double supcon_loops(const std::vector<Tensor>& views, double T, double base) {
  int64_t V = static_cast<int64_t>(views.size()), B = views[0].size(0), D = views[0].size(1), N = V * B;
  std::vector<std::vector<double>> f;
  for (const Tensor& v : views) {
    std::vector<double> d = v.to_vector<double>();
    for (int64_t i = 0; i < B; ++i) f.emplace_back(d.begin() + i * D, d.begin() + (i + 1) * D);
  }
  auto sim = [&](int64_t a, int64_t b) {
    double s = 0;
    for (int64_t t = 0; t < D; ++t) s += f[a][t] * f[b][t];
    return s / T;
  };
  double total = 0;
  for (int64_t a = 0; a < N; ++a) {
    double denom = 0;
    for (int64_t k = 0; k < N; ++k)
      if (k != a) denom += std::exp(sim(a, k));
    double pos = 0;
    for (int64_t v = 0; v < V; ++v) {
      int64_t p = v * B + a % B;
      if (p != a) pos += sim(a, p) - std::log(denom);
    }
    total += -(T / base) * pos / static_cast<double>(V - 1);
  }
  return total / static_cast<double>(N);
}

}  // namespace

TEST(SupconLoss, MatchesItsDefinition) {
  std::vector<Tensor> views;
  for (uint32_t v = 0; v < 4; ++v) views.push_back(unit_rows({5, 8}, v));
  double got = method::supcon_loss(views, 0.5, 0.07).item();
  EXPECT_NEAR(got, supcon_loops(views, 0.5, 0.07), 1e-10);
  // Two views, other temperatures.
  std::vector<Tensor> two{views[0], views[1]};
  EXPECT_NEAR(method::supcon_loss(two, 0.2, 0.2).item(), supcon_loops(two, 0.2, 0.2), 1e-10);
}

TEST(SupconLoss, GradientMatchesFiniteDifferences) {
  // Through the normalisation, as training uses it.
  std::vector<Tensor> raw;
  for (uint32_t v = 0; v < 4; ++v) raw.push_back(advcl::testing::random_tensor({3, 6}, 10 + v));
  advcl::testing::expect_gradients_match(
      [](const std::vector<Tensor>& in) {
        std::vector<Tensor> f;
        for (const Tensor& t : in) f.push_back(ops::l2_normalize(t));
        return method::supcon_loss(f, 0.5, 0.07);
      },
      raw, 1e-6);
}

TEST(SupconLoss, IdenticalViewsOfDistinctImagesGiveALowLoss) {
  // Views equal to each other and images orthogonal: positives dominate.
  std::vector<double> eye(16, 0.0);
  for (int i = 0; i < 4; ++i) eye[i * 4 + i] = 1;
  Tensor f = Tensor::from_vector<double>(eye, {4, 4});
  Tensor shuffled = ops::l2_normalize(advcl::testing::random_tensor({4, 4}, 3)).detach();
  double aligned = method::supcon_loss({f, f, f, f}).item();
  double random = method::supcon_loss({f, shuffled, f, shuffled}).item();
  EXPECT_LT(aligned, random);
}

TEST(SupconLoss, RejectsBadInput) {
  Tensor a = unit_rows({3, 4}, 1), b = unit_rows({2, 4}, 2);
  EXPECT_THROW(method::supcon_loss({a}), Error);
  EXPECT_THROW(method::supcon_loss({a, b}), Error);
  EXPECT_THROW(method::supcon_loss({a, a}, 0.0), Error);
}

TEST(PseudoLabelCe, MeanOverHeadsOfMeanCe) {
  Tensor l1 = advcl::testing::random_tensor({4, 2}, 20), l2 = advcl::testing::random_tensor({4, 5}, 21);
  Tensor y1 = Tensor::from_vector<int64_t>({0, 1, 1, 0}, {4}), y2 = Tensor::from_vector<int64_t>({4, -1, 2, 0}, {4});
  double want = (ops::cross_entropy(l1, y1).item() + ops::cross_entropy(l2, y2).item()) / 2;
  EXPECT_NEAR(method::pseudo_label_ce({l1, l2}, {y1, y2}).item(), want, 1e-12);
  EXPECT_THROW(method::pseudo_label_ce({l1}, {y1, y2}), Error);
}
