#include "advcl/pretrain/kmeans.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/ops.h"
#include "engine/blas.h"
#include "engine/parallel.h"

namespace advcl::method {

namespace {

constexpr int64_t kAssignChunk = 256;      // rows per CPU distance GEMM (one thread's; 512 KB of scores at k = 500)
constexpr int64_t kDeviceRowBlock = 16384;  // rows per GPU GEMM: fewer, larger launches and copies
constexpr int64_t kSumBlock = 1024;         // rows per partial sum in k-means++ (fixed: results do not
                                            // depend on the number of threads)
constexpr int64_t kDimChunk = 64;           // dimensions per partial sum of a k-means++ distance

// The features on the CPU in their own precision (float32 or float64: `x32`
// or `x64`), a float32 copy for the distance GEMM, and the squared norms.
struct Data {
  Tensor host;            // float32 or float64 [N, D] on the CPU
  Tensor host32;          // float32 [N, D] on the CPU (host itself for float32 features)
  const float* x32 = nullptr;
  const double* x64 = nullptr;  // null for float32 features: then x32 is exact
  std::vector<double> sq;       // ||x_i||^2, exact in float64
  int64_t N = 0, D = 0;
  Tensor device_x;  // float64 [N, D] on the GPU when the features are there, else undefined
};

// Calls f with the features' exact rows: const float* or const double*.
template <class F>
decltype(auto) with_rows(const Data& d, F&& f) {
  return d.x64 ? f(d.x64) : f(d.x32);
}

Data prepare(const Tensor& x, const char* who) {
  check_dim(who, x, 2, "feature matrix [N, D]");
  if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
    fail(who, ": features must be float32 or float64, not ", dtype_name(x.dtype()));
  Data d;
  d.N = x.size(0);
  d.D = x.size(1);
  d.host = x.to(Device::cpu());
  if (x.device().is_cuda()) d.device_x = x.to(DType::Float64).to(x.device());
  d.host32 = d.host.to(DType::Float32);
  d.x32 = d.host32.data<float>();
  if (d.host.dtype() == DType::Float64) d.x64 = d.host.data<double>();
  d.sq.resize(d.N);
  with_rows(d, [&](const auto* xs) {
    parallel_for(d.N, [&](int64_t i) {
      double s = 0;
      for (int64_t t = 0; t < d.D; ++t) s += static_cast<double>(xs[i * d.D + t]) * static_cast<double>(xs[i * d.D + t]);
      d.sq[i] = s;
    }, 256);
  });
  return d;
}

// ||x - c||^2 in float64, summed in index order: the definition, and what the
// assignment decides ties and near-ties with.
template <class S>
double exact_sqdist(const S* x, const double* c, int64_t D) {
  double s = 0;
  for (int64_t t = 0; t < D; ++t) {
    double diff = static_cast<double>(x[t]) - c[t];
    s += diff * diff;
  }
  return s;
}

// exact_sqdist for four rows at once: four independent sums, each in the same
// order as exact_sqdist (so the same bits), which the CPU overlaps.
template <class S>
void exact_sqdist4(const S* const x[4], const double* const c[4], int64_t D, double out[4]) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t t = 0; t < D; ++t) {
    double d0 = static_cast<double>(x[0][t]) - c[0][t], d1 = static_cast<double>(x[1][t]) - c[1][t];
    double d2 = static_cast<double>(x[2][t]) - c[2][t], d3 = static_cast<double>(x[3][t]) - c[3][t];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

// Eight float32 lanes as a GCC vector type: the AVX2 clone of a function and
// the baseline (SSE2) one do the same operations in the same order (no FMA),
// so they give the same bits.
typedef float Lanes8 __attribute__((vector_size(32)));
typedef int Mask8 __attribute__((vector_size(32)));

// s[j] = csq[j] - 2 s[j] (the products in, the scores out); returns the least score.
__attribute__((target_clones("avx2", "default"))) float scores_and_min(const float* csq, float* s, int64_t k) {
  Lanes8 best;
  for (int l = 0; l < 8; ++l) best[l] = std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    Lanes8 a, b;
    std::memcpy(&a, csq + j, sizeof a);
    std::memcpy(&b, s + j, sizeof b);
    Lanes8 v = a - 2.0f * b;
    std::memcpy(s + j, &v, sizeof v);
    best = v < best ? v : best;
  }
  float m = std::numeric_limits<float>::infinity();
  for (int l = 0; l < 8; ++l) m = std::min(m, best[l]);
  for (; j < k; ++j) {
    s[j] = csq[j] - 2.0f * s[j];
    m = std::min(m, s[j]);
  }
  return m;
}

// Appends, in increasing order, every j with s[j] <= limit.
__attribute__((target_clones("avx2", "default"))) void collect_at_most(const float* s, int64_t k, float limit,
                                                                         std::vector<int64_t>& out) {
  int64_t j = 0;
  Lanes8 lim = limit - Lanes8{};
  for (; j + 8 <= k; j += 8) {
    Lanes8 v;
    std::memcpy(&v, s + j, sizeof v);
    Mask8 hit = v <= lim;
    bool any = false;
    for (int l = 0; l < 8; ++l) any |= hit[l] != 0;
    if (!any) continue;
    for (int l = 0; l < 8; ++l)
      if (hit[l]) out.push_back(j + l);
  }
  for (; j < k; ++j)
    if (s[j] <= limit) out.push_back(j);
}

// Nearest centroid of every row, and the exact squared distance to it.
//
// Screening: score_j = ||c_j||^2 - 2 x.c_j in float32, with x.c_j from a
// float32 GEMM. Its error is at most e = 2 gamma ||x|| cmax (the products:
// gamma = n u / (1 - n u), n = D + 3, u = 2^-24, for D-term dot products in any
// summation order plus rounding x and c to float32) + 2u (cmax^2 + ||x|| cmax)
// (rounding ||c||^2 and the subtraction), so the truly nearest centroid scores
// at most 2e above the best score. Every centroid within that window is a
// candidate: with one candidate (nearly every row) it is the nearest; with
// several, their float64 distances decide (lowest index on exact ties, as a
// plain loop would). The kept distance is always recomputed in float64, so
// labels, inertia and convergence are those of exact arithmetic whatever the
// GEMM's rounding, thread count or blocking.
//
// Rows go in chunks to the threads (dynamic: a core taken by another process
// does not hold the others up); each thread runs its chunk's GEMM alone and
// scans the products while they are in its cache (the BLAS runs on the
// calling thread alone inside a parallel region).
void assign_cpu(const Data& d, const std::vector<double>& c, int64_t k, std::vector<int32_t>& labels,
                std::vector<double>& dist) {
  const int64_t D = d.D;
  std::vector<float> c32(c.begin(), c.end()), csq32(k);
  std::vector<double> csq(k);
  double cmax = 0;
  for (int64_t j = 0; j < k; ++j) {
    double s = 0;
    for (int64_t t = 0; t < D; ++t) s += c[j * D + t] * c[j * D + t];
    csq[j] = s;
    csq32[j] = static_cast<float>(s);
    cmax = std::max(cmax, std::sqrt(s));
  }
  const double u = std::ldexp(1.0, -24), nu = (static_cast<double>(D) + 3.0) * u;
  if (nu >= 0.5) fail("kmeans: ", D, " dimensions are too many for float32 distance screening");
  const double gamma = nu / (1.0 - nu);
  const int64_t chunks = (d.N + kAssignChunk - 1) / kAssignChunk;
  with_rows(d, [&](const auto* xs) {
#pragma omp parallel
    {
      std::vector<float> score(static_cast<size_t>(kAssignChunk * k));
      std::vector<int64_t> candidates;
#pragma omp for schedule(dynamic, 1)
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        int64_t r0 = chunk * kAssignChunk, rows = std::min(kAssignChunk, d.N - r0);
        blas::gemm(false, true, rows, k, D, 1.0f, d.x32 + r0 * D, D, c32.data(), D, 0.0f, score.data(), k);
        // Screen each row: the lowest-index candidate, or the float64 decision among several.
        for (int64_t r = 0; r < rows; ++r) {
          int64_t i = r0 + r;
          float* sr = score.data() + r * k;
          float best = scores_and_min(csq32.data(), sr, k);
          double xn = std::sqrt(d.sq[i]);
          double e = (2.0 * gamma * xn * cmax + 2.0 * u * (cmax * cmax + xn * cmax)) * 1.001;
          double wd = static_cast<double>(best) + 2.0 * e;
          float window = static_cast<float>(wd);
          if (static_cast<double>(window) < wd) window = std::nextafter(window, std::numeric_limits<float>::infinity());
          candidates.clear();
          collect_at_most(sr, k, window, candidates);
          labels[i] = static_cast<int32_t>(candidates.front());  // the lowest-index candidate
          dist[i] = -1;                                          // exact distance still to compute
          if (candidates.size() == 1) continue;
          const auto* xi = xs + i * D;
          double exact = exact_sqdist(xi, c.data() + candidates[0] * D, D);
          for (size_t m = 1; m < candidates.size(); ++m) {
            double v = exact_sqdist(xi, c.data() + candidates[m] * D, D);
            if (v < exact) {  // strict: ties keep the lower index
              exact = v;
              labels[i] = static_cast<int32_t>(candidates[m]);
            }
          }
          dist[i] = exact;
        }
        // The float64 distance of the rows with one candidate, four rows at a time.
        int64_t pending[4], n = 0;
        auto flush = [&] {
          const double* cs[4];
          decltype(xs) rows4[4];
          for (int64_t m = 0; m < 4; ++m) {
            int64_t i = pending[m < n ? m : 0];
            rows4[m] = xs + i * D;
            cs[m] = c.data() + static_cast<int64_t>(labels[i]) * D;
          }
          double out[4];
          exact_sqdist4(rows4, cs, D, out);
          for (int64_t m = 0; m < n; ++m) dist[pending[m]] = out[m];
          n = 0;
        };
        for (int64_t i = r0; i < r0 + rows; ++i) {
          if (dist[i] >= 0) continue;
          pending[n++] = i;
          if (n == 4) flush();
        }
        if (n > 0) flush();
      }
    }
  });
}

// The same on the GPU: the nearest centroid maximises 2 x.c - ||c||^2, so only
// its index and value per row come back to the CPU, not the [N, k] products.
void assign_device(const Data& d, const std::vector<double>& c, int64_t k, std::vector<int32_t>& labels,
                   std::vector<double>& dist) {
  std::vector<double> csq(k, 0.0);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t t = 0; t < d.D; ++t) csq[j] += c[j * d.D + t] * c[j * d.D + t];
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
  if (d.device_x.defined())
    assign_device(d, c, k, labels, dist);
  else
    assign_cpu(d, c, k, labels, dist);
  double inertia = 0;
  for (double v : dist) inertia += v;
  return inertia;
}

// ||x - c||^2 in chunks of kDimChunk dimensions, stopping as soon as the
// partial sum reaches `limit` (it can only grow): k-means++ only needs the
// distance where it is below the point's current nearest one, so rows far
// from a new centre are read only in part. The value returned below `limit`
// is the full sum, the same whether or not other rows stopped early.
//
// float64 features: float64 arithmetic. float32 features: float32 differences
// and squares, summed in 8 lanes per chunk and the chunks in float64 (relative
// error ~1e-6; these distances only weight the draws), in Lanes8.
double sqdist_below(const double* x, const double* c, int64_t D, double limit) {
  double s = 0;
  for (int64_t t0 = 0; t0 < D; t0 += kDimChunk) {
    int64_t t1 = std::min(D, t0 + kDimChunk);
    double part = 0;
    for (int64_t t = t0; t < t1; ++t) part += (x[t] - c[t]) * (x[t] - c[t]);
    s += part;
    if (s >= limit) break;
  }
  return s;
}

__attribute__((target_clones("avx2", "default"))) double sqdist_below(const float* x, const float* c, int64_t D,
                                                                        double limit) {
  double s = 0;
  for (int64_t t0 = 0; t0 < D; t0 += kDimChunk) {
    int64_t t1 = std::min(D, t0 + kDimChunk), t = t0;
    Lanes8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; t + 8 <= t1; t += 8) {
      Lanes8 a, b;
      std::memcpy(&a, x + t, sizeof a);
      std::memcpy(&b, c + t, sizeof b);
      Lanes8 diff = a - b;
      acc += diff * diff;
    }
    double part = 0;
    for (int l = 0; l < 8; ++l) part += static_cast<double>(acc[l]);
    for (; t < t1; ++t) part += static_cast<double>((x[t] - c[t]) * (x[t] - c[t]));
    s += part;
    if (s >= limit) break;
  }
  return s;
}

// k-means++ with the squared distance to the nearest centre so far kept per
// point (`nearest`) and lowered with each new centre; the next centre is drawn
// by prefix sums, first over fixed blocks of rows, then within the block.
template <class S>
std::vector<double> init_plus_plus_rows(const S* x, int64_t N, int64_t D, int64_t k, RngKey key) {
  std::vector<double> c(static_cast<size_t>(k * D));
  std::vector<double> nearest(N, std::numeric_limits<double>::infinity());
  int64_t blocks = (N + kSumBlock - 1) / kSumBlock;
  std::vector<double> block_sum(blocks);
  uint64_t draw = 0;
  int64_t pick = key.below(draw++, static_cast<uint32_t>(N));
  for (int64_t j = 0; j < k; ++j) {
    const S* centre = x + pick * D;
    for (int64_t t = 0; t < D; ++t) c[j * D + t] = static_cast<double>(centre[t]);
    if (j + 1 == k) break;
#pragma omp parallel for schedule(dynamic, 1) if (N >= 4 * kSumBlock)
    for (int64_t b = 0; b < blocks; ++b) {
      double s = 0;
      for (int64_t i = b * kSumBlock, end = std::min(N, (b + 1) * kSumBlock); i < end; ++i) {
        double v = sqdist_below(x + i * D, centre, D, nearest[i]);
        if (v < nearest[i]) nearest[i] = v;
        s += nearest[i];
      }
      block_sum[b] = s;
    }
    double total = 0;
    for (double v : block_sum) total += v;
    if (!(total > 0)) {  // every point coincides with a centre: fall back to uniform picks
      pick = key.below(draw++, static_cast<uint32_t>(N));
      continue;
    }
    // The first point (with a positive weight) where the running sum reaches
    // the target; the block holding it first, then the point within.
    double target = key.uniform_double(draw++) * total, acc = 0;
    int64_t b = 0;
    while (b + 1 < blocks && (acc + block_sum[b] < target || block_sum[b] <= 0)) acc += block_sum[b++];
    pick = -1;
    int64_t last_positive = -1;
    for (int64_t i = b * kSumBlock, end = std::min(N, (b + 1) * kSumBlock); i < end; ++i) {
      if (nearest[i] <= 0) continue;
      last_positive = i;
      acc += nearest[i];
      if (acc >= target) {
        pick = i;
        break;
      }
    }
    if (pick < 0) pick = last_positive;  // rounding left the target just past the block's end
    if (pick < 0) pick = N - 1;          // cannot happen: the block's weights sum to > 0
  }
  return c;
}

std::vector<double> init_plus_plus(const Data& d, int64_t k, RngKey key) {
  return with_rows(d, [&](const auto* xs) { return init_plus_plus_rows(xs, d.N, d.D, k, key); });
}

// Centroid update: each centroid moves to the mean of its points. The rows
// of each cluster are summed in index order (so the result is the same for
// any number of threads, and bit for bit what a plain loop gives), one
// cluster per task, whole rows at a time.
template <class S>
void update_centroids(const S* x, int64_t N, int64_t D, int64_t k, const std::vector<int32_t>& labels,
                      std::vector<double>& dist, std::vector<double>& c) {
  std::vector<int64_t> start(k + 1, 0), order(N);
  for (int32_t l : labels) ++start[l + 1];
  for (int64_t j = 0; j < k; ++j) start[j + 1] += start[j];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < N; ++i) order[fill[labels[i]]++] = i;
#pragma omp parallel
  {
    std::vector<double> sum(D);
#pragma omp for schedule(dynamic, 4)
    for (int64_t j = 0; j < k; ++j) {
      int64_t n = start[j + 1] - start[j];
      if (n == 0) continue;
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t m = start[j]; m < start[j + 1]; ++m) {
        const S* row = x + order[m] * D;
        for (int64_t t = 0; t < D; ++t) sum[t] += static_cast<double>(row[t]);
      }
      for (int64_t t = 0; t < D; ++t) c[j * D + t] = sum[t] / static_cast<double>(n);
    }
  }
  // An empty cluster takes the point farthest from its centroid (in cluster order).
  for (int64_t j = 0; j < k; ++j) {
    if (start[j + 1] > start[j]) continue;
    int64_t far = std::max_element(dist.begin(), dist.end()) - dist.begin();
    for (int64_t t = 0; t < D; ++t) c[j * D + t] = static_cast<double>(x[far * D + t]);
    dist[far] = 0;
  }
}

KMeansResult run_lloyd(const Data& d, std::vector<double> c, int64_t k, const KMeansOptions& opt) {
  KMeansResult r;
  r.labels.resize(d.N);
  std::vector<double> dist(d.N);
  double inertia = assign(d, c, k, r.labels, dist);
  int it = 0;
  while (it < opt.max_iterations) {
    ++it;
    with_rows(d, [&](const auto* xs) { update_centroids(xs, d.N, d.D, k, r.labels, dist, c); });
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

std::vector<double> centroids_vector(const Tensor& init, int64_t D, const char* who) {
  check_dim(who, init, 2, "centroids [k, D]");
  if (init.size(1) != D) fail(who, ": centroids ", shape_str(init.shape()), " for ", D, "-d features");
  return init.to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

}  // namespace

Tensor kmeans_plus_plus_init(const Tensor& x, int64_t k, RngKey key) {
  Data d = prepare(x, "kmeans_plus_plus_init");
  check_k(k, d.N);
  return Tensor::from_vector<double>(init_plus_plus(d, k, key), {k, d.D});
}

KMeansResult lloyd(const Tensor& x, const Tensor& init, const KMeansOptions& opt) {
  Data d = prepare(x, "lloyd");
  std::vector<double> c = centroids_vector(init, d.D, "lloyd");
  int64_t k = init.size(0);
  check_k(k, d.N);
  if (opt.max_iterations < 1) fail("lloyd: max_iterations must be >= 1");
  return run_lloyd(d, std::move(c), k, opt);
}

std::vector<int32_t> nearest_centroids(const Tensor& x, const Tensor& centroids, std::vector<double>* sqdist) {
  Data d = prepare(x, "nearest_centroids");
  d.device_x = Tensor();  // the CPU path, whatever the features' device
  std::vector<double> c = centroids_vector(centroids, d.D, "nearest_centroids");
  int64_t k = centroids.size(0);
  if (k < 1) fail("nearest_centroids: no centroids");
  std::vector<int32_t> labels(d.N);
  std::vector<double> dist(d.N);
  assign_cpu(d, c, k, labels, dist);
  if (sqdist) *sqdist = std::move(dist);
  return labels;
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
