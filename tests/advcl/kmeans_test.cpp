#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "advcl/pretrain/kmeans.h"
#include "engine/ops.h"
#include "engine/parallel.h"
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

namespace {
// Nearest centroid by plain float64 loops (lowest index on ties).
std::vector<int32_t> plain_nearest(const std::vector<double>& x, const std::vector<double>& c, int64_t N, int64_t D,
                                   int64_t k, std::vector<double>& best) {
  std::vector<int32_t> lab(N, 0);
  best.assign(N, std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < k; ++j) {
      double s = 0;
      for (int64_t t = 0; t < D; ++t) s += (x[i * D + t] - c[j * D + t]) * (x[i * D + t] - c[j * D + t]);
      if (s < best[i]) {
        best[i] = s;
        lab[i] = static_cast<int32_t>(j);
      }
    }
  return lab;
}
}  // namespace

TEST(KMeans, GemmAssignmentMatchesPlainLoops) {
  // float32 features, 200-d, 40 centroids drawn from the data plus noise: many
  // rows, float32 GEMM screening, float64 decision.
  const int64_t N = 3000, D = 200, k = 40;
  RngKey key{11, 0, 0, 0};
  std::vector<double> xv(N * D), cv(k * D);
  for (int64_t i = 0; i < N * D; ++i) xv[i] = static_cast<float>(key.normal(i) + (i / D % 7));
  for (int64_t i = 0; i < k * D; ++i) cv[i] = xv[(i / D) * 71 * D + i % D] + 0.3 * key.normal(N * D + i);
  Tensor x = Tensor::from_vector<double>(xv, {N, D}).to(DType::Float32);
  Tensor c = Tensor::from_vector<double>(cv, {k, D});
  std::vector<double> want_d, got_d;
  std::vector<int32_t> want = plain_nearest(xv, cv, N, D, k, want_d);
  std::vector<int32_t> got = method::nearest_centroids(x, c, &got_d);
  EXPECT_EQ(got, want);
  for (int64_t i = 0; i < N; ++i) ASSERT_EQ(got_d[i], want_d[i]) << "row " << i;  // same float64 sum, same order
}

TEST(KMeans, NearTiesBelowFloat32PrecisionAreDecidedInFloat64) {
  // Centroids 0 and 1 differ by 1e-9 in one coordinate, so they round to the
  // same float32 values and the float32 scores tell them apart only by
  // ||c||^2, which favours centroid 1; the points near 1 are nevertheless
  // nearer centroid 0 (their coordinate 3 is above 1 + 1e-9). Centroids 2 and
  // 3 coincide: exact ties, which go to the lower index.
  const int64_t D = 16, k = 4;
  std::vector<double> cv(k * D, 0.0), xv;
  for (int64_t t = 0; t < D; ++t) {
    cv[0 * D + t] = 1.0 + (t == 3 ? 1e-9 : 0.0);
    cv[1 * D + t] = 1.0;
    cv[2 * D + t] = -1.0;
    cv[3 * D + t] = -1.0;
  }
  int64_t N = 0;
  std::vector<int32_t> expected;
  for (double base : {1.0, -1.0, 0.25}) {
    for (int r = 0; r < 5; ++r, ++N) {
      for (int64_t t = 0; t < D; ++t) xv.push_back(t == 3 ? base + 1e-3 : base + 0.01 * r * ((t % 3) - 1));
      expected.push_back(base == 1.0 ? 0 : base == -1.0 ? 2 : 1);
    }
  }
  std::vector<double> want_d, got_d;
  ASSERT_EQ(plain_nearest(xv, cv, N, D, k, want_d), expected) << "the test data is not what it should be";
  // float64 features (float32 ones would round the 1e-9 away)
  std::vector<int32_t> got = method::nearest_centroids(Tensor::from_vector<double>(xv, {N, D}),
                                                       Tensor::from_vector<double>(cv, {k, D}), &got_d);
  EXPECT_EQ(got, expected);
  for (int64_t i = 0; i < N; ++i) EXPECT_EQ(got_d[i], want_d[i]) << "row " << i;
}

TEST(KMeans, ResultsDoNotDependOnTheNumberOfThreads) {
  std::vector<int> truth;
  std::vector<std::vector<double>> centres;
  RngKey ck{6, 0, 0, 0};
  for (int c = 0; c < 20; ++c) {
    centres.emplace_back();
    for (int t = 0; t < 24; ++t) centres.back().push_back(1.5 * ck.normal(c * 24 + t));
  }
  Tensor x = blobs(centres, 300, 1.0, truth);  // 6000 rows: several k-means++ blocks, parallel loops
  method::KMeansOptions opt;
  opt.k = 20;
  opt.restarts = 2;
  opt.max_iterations = 15;
  int before = num_threads();
  set_num_threads(1);
  method::KMeansResult one = method::kmeans(x, opt);
  set_num_threads(2);
  method::KMeansResult two = method::kmeans(x, opt);
  set_num_threads(before);
  EXPECT_EQ(one.labels, two.labels);
  EXPECT_EQ(one.inertia, two.inertia);
  EXPECT_EQ(one.centroids.to_vector<double>(), two.centroids.to_vector<double>());
}

TEST(KMeans, PlusPlusDrawsProportionallyToSquaredDistance) {
  // Points 0, 0, 0, 1, 3 on a line, k = 2. When the first centre is a 0, the
  // second is 1 with probability 1/10 and 3 with 9/10.
  Tensor x = Tensor::from_vector<double>({0, 0, 0, 1, 3}, {5, 1});
  int first_zero = 0, second_three = 0, second_zero = 0;
  for (uint32_t s = 0; s < 4000; ++s) {
    std::vector<double> c = method::kmeans_plus_plus_init(x, 2, RngKey{s, static_cast<uint32_t>(RngPurpose::KMeans), 0, 0}).to_vector<double>();
    if (c[0] != 0) continue;
    ++first_zero;
    second_three += c[1] == 3;
    second_zero += c[1] == 0;
  }
  EXPECT_NEAR(first_zero / 4000.0, 0.6, 0.04);
  EXPECT_EQ(second_zero, 0) << "a point at distance 0 must never be drawn";
  EXPECT_NEAR(static_cast<double>(second_three) / first_zero, 0.9, 0.03);
}

TEST(KMeans, EmptyClusterTakesTheFarthestPoint) {
  // Two identical initial centroids: all points tie and go to centroid 0, so
  // centroid 1 is empty after the first assignment and takes the farthest point (10).
  Tensor x = Tensor::from_vector<double>({0, 1, 2, 10}, {4, 1});
  method::KMeansOptions opt;
  opt.max_iterations = 10;
  method::KMeansResult r = method::lloyd(x, Tensor::from_vector<double>({0, 0}, {2, 1}), opt);
  EXPECT_EQ(r.labels, (std::vector<int32_t>{0, 0, 0, 1}));
  EXPECT_EQ(r.centroids.to_vector<double>(), (std::vector<double>{1, 10}));
  EXPECT_DOUBLE_EQ(r.inertia, 2.0);
}
