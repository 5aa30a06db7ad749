// k-means for the pseudo-labels (SPEC.md, "Pipeline" 1): k-means++
// initialisation, Lloyd iterations, several restarts keeping the lowest
// inertia. Deterministic: all randomness comes from the counter-based
// generator keyed by (seed, RngPurpose::KMeans, restart).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace advcl::method {

struct KMeansOptions {
  int64_t k = 10;
  int restarts = 3;
  int max_iterations = 100;
  double tolerance = 1e-6;  // stop when the relative inertia improvement falls below this
  uint64_t seed = 0;
};

struct KMeansResult {
  std::vector<int32_t> labels;  // [N], values 0..k-1
  Tensor centroids;             // float64 [k, D]
  double inertia = 0;           // sum of squared distances to the assigned centroid
  int iterations = 0;           // Lloyd iterations of the kept restart
  int restart = 0;              // which restart was kept
  std::vector<int64_t> sizes;   // cluster sizes
};

// x: float32 or float64 [N, D] on the CPU, N >= k.
KMeansResult kmeans(const Tensor& x, const KMeansOptions& opt);

}  // namespace advcl::method
