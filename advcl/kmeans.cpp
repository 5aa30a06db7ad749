#include "advcl/kmeans.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/blas.h"
#include "engine/ops.h"
#include "engine/parallel.h"

namespace advcl::method {

namespace {

constexpr int64_t kRowBlock = 2048;       // rows per CPU distance GEMM (bounds memory at k = 500)
constexpr int64_t kDeviceRowBlock = 16384;  // rows per GPU GEMM: fewer, larger launches and copies

struct Data {
  std::vector<double> x;   // [N, D] on the CPU (the update step and k-means++ read it)
  std::vector<double> sq;  // ||x_i||^2
  int64_t N, D;
  Tensor device_x;  // float64 [N, D] on the GPU when the features are there, else undefined
};

Data prepare(const Tensor& x, const char* who) {
  check_dim(who, x, 2, "feature matrix [N, D]");
  if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
    fail(who, ": features must be float32 or float64, not ", dtype_name(x.dtype()));
  Data d;
  Tensor x64 = x.to(DType::Float64);
  if (x.device().is_cuda()) d.device_x = x64;
  d.x = x64.to_vector<double>();
  d.N = x.size(0);
  d.D = x.size(1);
  d.sq.resize(d.N);
  parallel_for(d.N, [&](int64_t i) {
    double s = 0;
    for (int64_t t = 0; t < d.D; ++t) s += d.x[i * d.D + t] * d.x[i * d.D + t];
    d.sq[i] = s;
  }, 256);
  return d;
}

// Nearest centroid of every row and the squared distance to it:
// ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2, with x.c from one GEMM per block.
void assign_cpu(const Data& d, const std::vector<double>& c, const std::vector<double>& csq, int64_t k,
                std::vector<int32_t>& labels, std::vector<double>& dist) {
  std::vector<double> dots(static_cast<size_t>(std::min(kRowBlock, d.N) * k));
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
}

// The same on the GPU: the nearest centroid maximises 2 x.c - ||c||^2, so only
// its index and value per row come back to the CPU, not the [N, k] products.
void assign_device(const Data& d, const std::vector<double>& c, const std::vector<double>& csq, int64_t k,
                   std::vector<int32_t>& labels, std::vector<double>& dist) {
  NoGradGuard no_grad;
  Device dev = d.device_x.device();
  Tensor ct = Tensor::from_vector<double>(c, {k, d.D}, dev);
  Tensor csq_t = Tensor::from_vector<double>(csq, {k}, dev);
  for (int64_t r0 = 0; r0 < d.N; r0 += kDeviceRowBlock) {
    int64_t rows = std::min(kDeviceRowBlock, d.N - r0);
    Tensor xb = rows == d.N ? d.device_x : ops::slice(d.device_x, r0, r0 + rows);
    Tensor score = ops::sub(ops::mul(ops::matmul(xb, ct, false, true), 2.0), csq_t);
    std::vector<int64_t> arg = ops::argmax(score, 1).to_vector<int64_t>();
    std::vector<double> best = ops::max(score, 1).to_vector<double>();
    for (int64_t r = 0; r < rows; ++r) {
      labels[r0 + r] = static_cast<int32_t>(arg[r]);
      dist[r0 + r] = std::max(d.sq[r0 + r] - best[r], 0.0);
    }
  }
}

double assign(const Data& d, const std::vector<double>& c, int64_t k, std::vector<int32_t>& labels,
              std::vector<double>& dist) {
  std::vector<double> csq(k, 0.0);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t t = 0; t < d.D; ++t) csq[j] += c[j * d.D + t] * c[j * d.D + t];
  if (d.device_x.defined())
    assign_device(d, c, csq, k, labels, dist);
  else
    assign_cpu(d, c, csq, k, labels, dist);
  double inertia = 0;
  for (double v : dist) inertia += v;
  return inertia;
}

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

KMeansResult run_lloyd(const Data& d, std::vector<double> c, int64_t k, const KMeansOptions& opt) {
  KMeansResult r;
  r.labels.resize(d.N);
  std::vector<double> dist(d.N);
  double inertia = assign(d, c, k, r.labels, dist);
  int it = 0;
  while (it < opt.max_iterations) {
    ++it;
    // Update: each centroid moves to the mean of its points.
    std::vector<double> sum(static_cast<size_t>(k * d.D), 0.0);
    std::vector<int64_t> count(k, 0);
    for (int64_t i = 0; i < d.N; ++i) {
      ++count[r.labels[i]];
      for (int64_t t = 0; t < d.D; ++t) sum[r.labels[i] * d.D + t] += d.x[i * d.D + t];
    }
    for (int64_t j = 0; j < k; ++j) {
      if (count[j] == 0) {
        int64_t far = std::max_element(dist.begin(), dist.end()) - dist.begin();
        std::copy(d.x.begin() + far * d.D, d.x.begin() + (far + 1) * d.D, c.begin() + j * d.D);
        dist[far] = 0;
        continue;
      }
      for (int64_t t = 0; t < d.D; ++t) c[j * d.D + t] = sum[j * d.D + t] / static_cast<double>(count[j]);
    }
    double next = assign(d, c, k, r.labels, dist);
    bool converged = inertia - next <= opt.tolerance * std::max(inertia, 1e-300);
    inertia = next;
    if (converged) break;
  }
  r.inertia = inertia;
  r.iterations = it;
  r.centroids = Tensor::from_vector<double>(c, {k, d.D});
  r.sizes.assign(k, 0);
  for (int32_t l : r.labels) ++r.sizes[l];
  return r;
}

void check_k(int64_t k, int64_t n) {
  if (k < 1 || k > n) fail("kmeans: k = ", k, " needs 1 <= k <= number of points (", n, ")");
}

}  // namespace

Tensor kmeans_plus_plus_init(const Tensor& x, int64_t k, RngKey key) {
  Data d = prepare(x, "kmeans_plus_plus_init");
  check_k(k, d.N);
  return Tensor::from_vector<double>(init_plus_plus(d, k, key), {k, d.D});
}

KMeansResult lloyd(const Tensor& x, const Tensor& init, const KMeansOptions& opt) {
  Data d = prepare(x, "lloyd");
  check_dim("lloyd", init, 2, "initial centroids [k, D]");
  if (init.size(1) != d.D) fail("lloyd: initial centroids ", shape_str(init.shape()), " for ", d.D, "-d features");
  int64_t k = init.size(0);
  check_k(k, d.N);
  if (opt.max_iterations < 1) fail("lloyd: max_iterations must be >= 1");
  return run_lloyd(d, init.to(Device::cpu()).to(DType::Float64).to_vector<double>(), k, opt);
}

KMeansResult kmeans(const Tensor& x, const KMeansOptions& opt) {
  Data d = prepare(x, "kmeans");
  check_k(opt.k, d.N);
  if (opt.restarts < 1 || opt.max_iterations < 1) fail("kmeans: restarts and max_iterations must be >= 1");
  KMeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  for (int r = 0; r < opt.restarts; ++r) {
    RngKey key{opt.seed, static_cast<uint32_t>(RngPurpose::KMeans), static_cast<uint32_t>(r), 0};
    KMeansResult one = run_lloyd(d, init_plus_plus(d, opt.k, key), opt.k, opt);
    if (one.inertia < best.inertia) {
      best = std::move(one);
      best.restart = r;
    }
  }
  return best;
}

}  // namespace advcl::method
