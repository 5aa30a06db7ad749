#include "advcl/kmeans.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/blas.h"
#include "engine/parallel.h"
#include "engine/rng.h"

namespace advcl::method {

namespace {

constexpr int64_t kRowBlock = 2048;  // rows per distance GEMM (bounds memory at k = 500)

struct Data {
  std::vector<double> x;   // [N, D]
  std::vector<double> sq;  // ||x_i||^2
  int64_t N, D;
};

// Nearest centroid of every row and the squared distance to it:
// ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, with x.c from one GEMM per block.
double assign(const Data& d, const std::vector<double>& c, int64_t k, std::vector<int32_t>& labels,
              std::vector<double>& dist) {
  std::vector<double> csq(k, 0.0);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t t = 0; t < d.D; ++t) csq[j] += c[j * d.D + t] * c[j * d.D + t];
  std::vector<double> dots(static_cast<size_t>(kRowBlock * k));
  for (int64_t r0 = 0; r0 < d.N; r0 += kRowBlock) {
    int64_t rows = std::min(kRowBlock, d.N - r0);
    blas::gemm(false, true, rows, k, d.D, 1.0, d.x.data() + r0 * d.D, d.D, c.data(), d.D, 0.0, dots.data(), k);
    parallel_for(rows, [&](int64_t r) {
      double best = std::numeric_limits<double>::infinity();
      int32_t arg = 0;
      for (int64_t j = 0; j < k; ++j) {
        double v = d.sq[r0 + r] - 2 * dots[r * k + j] + csq[j];
        if (v < best) {
          best = v;
          arg = static_cast<int32_t>(j);
        }
      }
      labels[r0 + r] = arg;
      dist[r0 + r] = std::max(best, 0.0);
    }, 256);
  }
  double inertia = 0;
  for (double v : dist) inertia += v;
  return inertia;
}

// k-means++: the first centre uniformly, each next one with probability
// proportional to the squared distance to the nearest centre so far.
std::vector<double> init_plus_plus(const Data& d, int64_t k, RngKey key) {
  std::vector<double> c(static_cast<size_t>(k * d.D));
  std::vector<double> nearest(d.N, std::numeric_limits<double>::infinity());
  uint64_t draw = 0;
  int64_t pick = key.below(draw++, static_cast<uint32_t>(d.N));
  for (int64_t j = 0; j < k; ++j) {
    std::copy(d.x.begin() + pick * d.D, d.x.begin() + (pick + 1) * d.D, c.begin() + j * d.D);
    const double* cj = c.data() + j * d.D;
    parallel_for(d.N, [&](int64_t i) {
      double s = 0;
      for (int64_t t = 0; t < d.D; ++t) {
        double diff = d.x[i * d.D + t] - cj[t];
        s += diff * diff;
      }
      nearest[i] = std::min(nearest[i], s);
    }, 256);
    if (j + 1 == k) break;
    double total = 0;
    for (double v : nearest) total += v;
    if (total <= 0) {  // every point coincides with a centre: fall back to uniform picks
      pick = key.below(draw++, static_cast<uint32_t>(d.N));
      continue;
    }
    double target = key.uniform_double(draw++) * total, acc = 0;
    pick = d.N - 1;
    for (int64_t i = 0; i < d.N; ++i) {
      acc += nearest[i];
      if (acc >= target && nearest[i] > 0) {
        pick = i;
        break;
      }
    }
  }
  return c;
}

}  // namespace

KMeansResult kmeans(const Tensor& x, const KMeansOptions& opt) {
  check_dim("kmeans", x, 2, "feature matrix [N, D]");
  if (!x.device().is_cpu()) fail("kmeans: features must be on the CPU");
  Data d{x.to(DType::Float64).to_vector<double>(), {}, x.size(0), x.size(1)};
  int64_t k = opt.k;
  if (k < 1 || k > d.N) fail("kmeans: k = ", k, " needs 1 <= k <= number of points (", d.N, ")");
  if (opt.restarts < 1 || opt.max_iterations < 1) fail("kmeans: restarts and max_iterations must be >= 1");
  d.sq.resize(d.N);
  for (int64_t i = 0; i < d.N; ++i) {
    double s = 0;
    for (int64_t t = 0; t < d.D; ++t) s += d.x[i * d.D + t] * d.x[i * d.D + t];
    d.sq[i] = s;
  }

  KMeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  std::vector<int32_t> labels(d.N);
  std::vector<double> dist(d.N);
  for (int r = 0; r < opt.restarts; ++r) {
    RngKey key{opt.seed, static_cast<uint32_t>(RngPurpose::KMeans), static_cast<uint32_t>(r), 0};
    std::vector<double> c = init_plus_plus(d, k, key);
    double inertia = assign(d, c, k, labels, dist);
    int it = 0;
    while (it < opt.max_iterations) {
      ++it;
      // Update: each centroid moves to the mean of its points.
      std::vector<double> sum(static_cast<size_t>(k * d.D), 0.0);
      std::vector<int64_t> count(k, 0);
      for (int64_t i = 0; i < d.N; ++i) {
        ++count[labels[i]];
        for (int64_t t = 0; t < d.D; ++t) sum[labels[i] * d.D + t] += d.x[i * d.D + t];
      }
      for (int64_t j = 0; j < k; ++j) {
        if (count[j] == 0) {
          // An empty cluster takes the point farthest from its centroid.
          int64_t far = std::max_element(dist.begin(), dist.end()) - dist.begin();
          std::copy(d.x.begin() + far * d.D, d.x.begin() + (far + 1) * d.D, c.begin() + j * d.D);
          dist[far] = 0;
          continue;
        }
        for (int64_t t = 0; t < d.D; ++t) c[j * d.D + t] = sum[j * d.D + t] / static_cast<double>(count[j]);
      }
      double next = assign(d, c, k, labels, dist);
      bool converged = inertia - next <= opt.tolerance * std::max(inertia, 1e-300);
      inertia = next;
      if (converged) break;
    }
    if (inertia < best.inertia) {
      best.inertia = inertia;
      best.labels = labels;
      best.centroids = Tensor::from_vector<double>(c, {k, d.D});
      best.iterations = it;
      best.restart = r;
    }
  }
  best.sizes.assign(k, 0);
  for (int32_t l : best.labels) ++best.sizes[l];
  return best;
}

}  // namespace advcl::method
