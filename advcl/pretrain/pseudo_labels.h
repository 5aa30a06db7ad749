// Pseudo-labels: for every training image, one cluster index per granularity
// (k = 2, 10, 50, 100, 500 in the paper). Stored as safetensors with int32
// tensors `pseudo_train_{k}` (the reference's names), and importable from the
// reference's own pickle `imagenet_clPretrain_pseudo_labels.pkl`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace advcl::method {

struct PseudoLabels {
  std::vector<int64_t> ks;                    // granularities, e.g. {2, 10, 50, 100, 500}
  std::vector<std::vector<int32_t>> train;    // per k: one label per training image
  std::string source;                         // where they came from (for logs and metadata)

  int64_t size() const { return train.empty() ? 0 : static_cast<int64_t>(train[0].size()); }
  // Throws unless every k has `n` labels within [0, k) (or -1).
  void check(int64_t n, const std::string& what) const;
  // Per k: "k=10: 10 clusters, sizes 4007..6868".
  std::string summary() const;
  // int64 [B] labels of head h for the dataset indices of a batch.
  Tensor lookup(size_t h, const Tensor& indices) const;
};

void save_pseudo_labels(const std::string& path, const PseudoLabels& labels);
// Reads our safetensors file, or the reference's pickle (by content).
PseudoLabels load_pseudo_labels(const std::string& path);

}  // namespace advcl::method
