// The order in which conv2d on cuDNN (engine/ops/conv2d.cu) tries the
// algorithms of one direction when it first meets a geometry, and the
// precision a plan is cached under, as plain C++ so the CPU tests cover them.
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

// The arithmetic of a cuDNN plan (its descriptors and the algorithm chosen
// for each direction). Plans are cached per geometry and precision: a bf16
// plan and a float32 plan of the same shape have other descriptors, and
// cuDNN offers and ranks other algorithms for them.
enum class ConvPrecision {
  Float64,  // float64 tensors and sums
  Float32,  // float32 with FMA math only (TF32 off, cuda/settings.h)
  Tf32,     // float32 tensors, TF32 tensor cores allowed
  Bf16,     // autocast (engine/autocast.h): bf16 operands and output, float32 compute
};

// The precision of a convolution of float64 or float32 tensors, with
// autocast's bf16 asked for or not, and TF32 allowed or not. Autocast never
// touches float64, and TF32 plays no part in float64 or bf16 plans, so it
// does not split them.
inline ConvPrecision conv_precision(bool float64, bool bf16, bool allow_tf32) {
  if (float64) return ConvPrecision::Float64;
  if (bf16) return ConvPrecision::Bf16;
  return allow_tf32 ? ConvPrecision::Tf32 : ConvPrecision::Float32;
}

inline const char* precision_name(ConvPrecision p) {
  switch (p) {
    case ConvPrecision::Float64: return "float64";
    case ConvPrecision::Float32: return "float32";
    case ConvPrecision::Tf32: return "float32 (tf32)";
    case ConvPrecision::Bf16: return "bf16";
  }
  return "?";
}

}  // namespace advcl::cuda_ops
