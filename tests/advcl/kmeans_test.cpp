#include <gtest/gtest.h>

#include <map>
#include <set>

#include "advcl/kmeans.h"
#include "engine/ops.h"

using namespace advcl;

namespace {
// n points around each of `centres` (rows of [k, D]) with noise of size `noise`.
Tensor blobs(const std::vector<std::vector<double>>& centres, int64_t n, double noise, std::vector<int>& truth) {
  int64_t D = static_cast<int64_t>(centres[0].size());
  std::vector<double> x;
  RngKey key{9, 0, 0, 0};
  uint64_t draw = 0;
  for (int64_t i = 0; i < n * static_cast<int64_t>(centres.size()); ++i) {
    int c = static_cast<int>(i % static_cast<int64_t>(centres.size()));
    truth.push_back(c);
    for (int64_t t = 0; t < D; ++t) x.push_back(centres[c][t] + noise * key.normal(draw++));
  }
  return Tensor::from_vector<double>(x, {static_cast<int64_t>(truth.size()), D}).to(DType::Float32);
}
}  // namespace

TEST(KMeans, RecoversSeparatedClusters) {
  std::vector<int> truth;
  Tensor x = blobs({{0, 0, 0}, {10, 0, 0}, {0, 10, 0}, {0, 0, 10}}, 50, 0.5, truth);
  method::KMeansOptions opt;
  opt.k = 4;
  opt.restarts = 3;
  method::KMeansResult r = method::kmeans(x, opt);
  // Same partition as the truth, up to renaming.
  std::map<int, int> rename;
  for (size_t i = 0; i < truth.size(); ++i) {
    auto [it, fresh] = rename.emplace(truth[i], r.labels[i]);
    EXPECT_EQ(it->second, r.labels[i]) << "point " << i;
  }
  EXPECT_EQ(rename.size(), 4u);
  for (int64_t s : r.sizes) EXPECT_EQ(s, 50);
  // inertia ~ N * D * noise^2
  EXPECT_NEAR(r.inertia / (200 * 3 * 0.25), 1.0, 0.2);
}

TEST(KMeans, DeterministicAndBestOfRestarts) {
  std::vector<int> truth;
  Tensor x = blobs({{0, 0}, {3, 0}, {0, 3}, {3, 3}, {1.5, 1.5}}, 40, 0.8, truth);
  method::KMeansOptions opt;
  opt.k = 5;
  opt.restarts = 4;
  method::KMeansResult a = method::kmeans(x, opt), b = method::kmeans(x, opt);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.inertia, b.inertia);
  for (int r = 0; r < 4; ++r) {
    method::KMeansOptions one = opt;
    one.restarts = r + 1;
    EXPECT_GE(method::kmeans(x, one).inertia, a.inertia - 1e-9);
  }
}

TEST(KMeans, RejectsBadOptions) {
  Tensor x = Tensor::zeros({3, 2});
  method::KMeansOptions opt;
  opt.k = 4;
  EXPECT_THROW(method::kmeans(x, opt), Error);
  opt.k = 0;
  EXPECT_THROW(method::kmeans(x, opt), Error);
  // identical points: k-means must still terminate with k clusters' labels in range
  opt.k = 2;
  method::KMeansResult r = method::kmeans(x, opt);
  for (int32_t l : r.labels) EXPECT_TRUE(l == 0 || l == 1);
}
