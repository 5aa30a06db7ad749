// k-means for the pseudo-labels (SPEC.md, "Pipeline" 1): k-means++
// initialisation, Lloyd iterations, several restarts keeping the lowest
// inertia. Deterministic: all randomness comes from the counter-based
// generator keyed by (seed, RngPurpose::KMeans, restart).
//
// The arithmetic is float64 on the CPU. The distance GEMM of every Lloyd
// iteration (its cost: N * k * D) runs where the features are: the BLAS for
// CPU features, cuBLAS (through ops::matmul) for features on a GPU.
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

}  // namespace advcl::method
