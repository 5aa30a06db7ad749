#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "advcl/kmeans.h"
#include "engine/ops.h"
#include "engine/storage.h"

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

namespace {
// Plain Lloyd, written from the definition (distances as sums of squared
// differences, no GEMM), for comparison with method::lloyd.
struct Plain {
  std::vector<int32_t> labels;
  double inertia = 0;
  int iterations = 0;
};
Plain plain_lloyd(const std::vector<double>& x, int64_t N, int64_t D, std::vector<double> c, int64_t k, int iters,
                  double tolerance) {
  Plain p;
  p.labels.assign(N, 0);
  auto assign = [&] {
    double total = 0;
    for (int64_t i = 0; i < N; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < k; ++j) {
        double s = 0;
        for (int64_t t = 0; t < D; ++t) s += (x[i * D + t] - c[j * D + t]) * (x[i * D + t] - c[j * D + t]);
        if (s < best) {
          best = s;
          p.labels[i] = static_cast<int32_t>(j);
        }
      }
      total += best;
    }
    return total;
  };
  p.inertia = assign();
  while (p.iterations < iters) {
    ++p.iterations;
    std::vector<double> sum(k * D, 0.0);
    std::vector<int64_t> n(k, 0);
    for (int64_t i = 0; i < N; ++i) {
      ++n[p.labels[i]];
      for (int64_t t = 0; t < D; ++t) sum[p.labels[i] * D + t] += x[i * D + t];
    }
    for (int64_t j = 0; j < k; ++j) {
      if (n[j] == 0) ADD_FAILURE() << "empty cluster: the test data should not make one";
      for (int64_t t = 0; t < D && n[j] > 0; ++t) c[j * D + t] = sum[j * D + t] / static_cast<double>(n[j]);
    }
    double next = assign();
    bool done = p.inertia - next <= tolerance * p.inertia;
    p.inertia = next;
    if (done) break;
  }
  return p;
}
}  // namespace

TEST(KMeans, LloydMatchesAPlainImplementationFromTheSameInit) {
  // Overlapping clusters in 8-d, so that many points change cluster over the iterations.
  std::vector<int> truth;
  std::vector<std::vector<double>> centres;
  RngKey ck{5, 0, 0, 0};
  for (int c = 0; c < 12; ++c) {
    centres.emplace_back();
    for (int t = 0; t < 8; ++t) centres.back().push_back(2 * ck.normal(c * 8 + t));
  }
  Tensor x = blobs(centres, 40, 1.5, truth);
  int64_t N = x.size(0), D = x.size(1), k = 12;
  Tensor init = method::kmeans_plus_plus_init(x, k, RngKey{3, 0, 0, 0});
  ASSERT_EQ(init.shape(), (Shape{k, D}));
  // Every initial centroid is one of the points.
  std::vector<double> xv = x.to(DType::Float64).to_vector<double>(), cv = init.to_vector<double>();
  for (int64_t j = 0; j < k; ++j) {
    bool found = false;
    for (int64_t i = 0; i < N && !found; ++i)
      found = std::equal(cv.begin() + j * D, cv.begin() + (j + 1) * D, xv.begin() + i * D);
    EXPECT_TRUE(found) << "centroid " << j;
  }
  for (double tol : {-1.0, 0.0}) {  // a fixed number of iterations, then until it stops improving
    method::KMeansOptions opt;
    opt.max_iterations = 6;
    opt.tolerance = tol;
    method::KMeansResult ours = method::lloyd(x, init, opt);
    Plain ref = plain_lloyd(xv, N, D, cv, k, opt.max_iterations, tol);
    EXPECT_EQ(ours.labels, ref.labels) << "tolerance " << tol;
    EXPECT_NEAR(ours.inertia, ref.inertia, 1e-9 * ref.inertia);
    EXPECT_EQ(ours.iterations, ref.iterations);
  }
  // kmeans() with one restart is k-means++ from the restart's key, then Lloyd.
  method::KMeansOptions opt;
  opt.k = k;
  opt.restarts = 1;
  opt.seed = 3;
  opt.max_iterations = 20;
  method::KMeansResult whole = method::kmeans(x, opt);
  method::KMeansResult parts = method::lloyd(
      x, method::kmeans_plus_plus_init(x, k, RngKey{3, static_cast<uint32_t>(RngPurpose::KMeans), 0, 0}), opt);
  EXPECT_EQ(whole.labels, parts.labels);
  EXPECT_EQ(whole.inertia, parts.inertia);
}

TEST(KMeans, LloydRejectsMismatchedInit) {
  Tensor x = Tensor::zeros({5, 3});
  method::KMeansOptions opt;
  EXPECT_THROW(method::lloyd(x, Tensor::zeros({2, 4}), opt), Error);
  EXPECT_THROW(method::lloyd(x, Tensor::zeros({6, 3}), opt), Error);
  EXPECT_THROW(method::lloyd(x, Tensor::zeros({6}), opt), Error);
}

TEST(KMeans, GpuFeaturesGiveTheCpuResult) {
  if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
  std::vector<int> truth;
  Tensor x = blobs({{0, 0, 1}, {3, 0, 0}, {0, 3, 2}, {3, 3, 1}, {1.5, 1.5, 0}}, 60, 0.8, truth);
  Tensor xd;
  try {
    xd = x.to(Device::cuda());
  } catch (const Error& e) {
    GTEST_SKIP() << "no usable GPU: " << e.what();
  }
  method::KMeansOptions opt;
  opt.k = 5;
  method::KMeansResult cpu = method::kmeans(x, opt), gpu = method::kmeans(xd, opt);
  EXPECT_EQ(cpu.labels, gpu.labels);
  EXPECT_NEAR(cpu.inertia, gpu.inertia, 1e-9 * cpu.inertia);
}
