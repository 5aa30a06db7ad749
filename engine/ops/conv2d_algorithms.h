// The order in which conv2d on cuDNN (engine/ops/conv2d.cu) tries the
// algorithms of one direction when it first meets a geometry, as plain C++
// so the CPU tests cover it.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

namespace advcl::cuda_ops {

// One algorithm as cuDNN reports it (a cudnnConvolution*AlgoPerf_t).
struct AlgoPerf {
  int algo = 0;
  bool ok = false;             // status CUDNN_STATUS_SUCCESS
  bool deterministic = false;  // determinism CUDNN_DETERMINISTIC
  size_t memory = 0;           // workspace bytes
};

struct AlgoOrder {
  std::vector<int> preferred;  // tried first, in this order
  // Deterministic mode only: the non-deterministic algorithms, tried (with a
  // warning) when none of `preferred` runs, so that an op never fails for
  // want of a deterministic algorithm.
  std::vector<int> fallback;
};

// `measured` (cudnnFind*AlgorithmEx: fastest first) and then `guessed`
// (cuDNN's heuristics, for when measuring failed or left some out); an entry
// is kept if cuDNN supports it and its workspace is within its list's
// budget. An algorithm listed twice keeps its first place.
inline AlgoOrder order_algorithms(const std::vector<AlgoPerf>& measured, size_t measured_budget,
                                  const std::vector<AlgoPerf>& guessed, size_t guessed_budget, bool deterministic) {
  AlgoOrder order;
  auto add = [&](const AlgoPerf& p, size_t budget) {
    if (!p.ok || p.memory > budget) return;
    auto listed = [&](const std::vector<int>& v) { return std::find(v.begin(), v.end(), p.algo) != v.end(); };
    if (listed(order.preferred) || listed(order.fallback)) return;
    (deterministic && !p.deterministic ? order.fallback : order.preferred).push_back(p.algo);
  };
  for (const AlgoPerf& p : measured) add(p, measured_budget);
  for (const AlgoPerf& p : guessed) add(p, guessed_budget);
  return order;
}

}  // namespace advcl::cuda_ops
