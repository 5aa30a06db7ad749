// k-means for the pseudo-labels (docs/method.md section 3): k-means++
// initialisation, Lloyd iterations, several restarts keeping the lowest
// inertia. Deterministic: all randomness comes from the counter-based
// generator keyed by (seed, RngPurpose::KMeans, restart).
//
// Precision: the distance GEMM of the assignment step (its cost: N * k * D)
// runs in float32 on the CPU (cuBLAS float64 for features on a GPU), and only
// screens: wherever float32 rounding could change which centroid is nearest,
// float64 distances decide, and the kept distances (hence inertia and
// convergence) are always float64. Labels are therefore those of exact float64
// arithmetic (see assign_cpu in kmeans.cpp). Centroids and the update step are
// float64; k-means++ weighs its draws with float32 distances for float32
// features (float64 for float64 ones). Results do not depend on the number of
// threads.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace advcl::method {

struct KMeansOptions {
  int64_t k = 10;
  int restarts = 3;
  int max_iterations = 100;
  // Stop when the relative inertia improvement falls to this or below
  // (0: only when it stops improving; negative: always run max_iterations).
  double tolerance = 1e-6;
  uint64_t seed = 0;
};

struct KMeansResult {
  std::vector<int32_t> labels;  // [N], values 0..k-1
  Tensor centroids;             // float64 [k, D] on the CPU
  double inertia = 0;           // sum of squared distances to the assigned centroid
  int iterations = 0;           // Lloyd iterations of the kept restart
  int restart = 0;              // which restart was kept
  std::vector<int64_t> sizes;   // cluster sizes
};

// x: float32 or float64 [N, D], on the CPU or a GPU, N >= k.
KMeansResult kmeans(const Tensor& x, const KMeansOptions& opt);

// The two halves of one restart, for tests and benchmarks.
// k-means++: float64 [k, D] CPU centroids; the first uniformly, each next one a
// point drawn with probability proportional to its squared distance to the
// nearest centroid so far. All draws from `key`.
Tensor kmeans_plus_plus_init(const Tensor& x, int64_t k, RngKey key);
// Lloyd iterations from `init` [k, D] (opt.max_iterations and opt.tolerance;
// opt.k, restarts and seed are not used). An empty cluster takes the point
// farthest from its centroid.
KMeansResult lloyd(const Tensor& x, const Tensor& init, const KMeansOptions& opt);
// The assignment step alone, on the CPU: the nearest of `centroids` [k, D]
// (any float dtype) for every row of x (lowest index on ties), and the squared
// float64 distance to it in *sqdist when given.
std::vector<int32_t> nearest_centroids(const Tensor& x, const Tensor& centroids, std::vector<double>* sqdist = nullptr);

}  // namespace advcl::method
