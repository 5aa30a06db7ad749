// Shared pieces of the AutoAttack attacks (APGD, FAB, Square): the model
// interface and small batch helpers. Their random streams are RngPurpose's
// ApgdCeStart, ApgdTStart, SquareInit and SquareStep (engine/rng.h).
//
// Division of labour: the model and every [B, C, H, W] update run as engine
// ops, so they run on whatever device the tensors are on. Per-sample
// bookkeeping (losses, predictions, step sizes, which rows improved) is a
// handful of numbers per sample and lives on the host in double precision;
// row-wise choices go back to the device as 0/1 masks.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace advcl::autoattack {

// x: float [N, C, H, W] in [0, 1] -> logits [N, classes]. Differentiable in x
// when x requires a gradient. The caller has put the model in eval mode.
using LogitsFn = std::function<Tensor(const Tensor& x)>;

// Optional progress sink (one line per call, no trailing newline).
using ProgressFn = std::function<void(const std::string& line)>;

// --- host views --------------------------------------------------------------
// Any floating tensor on any device -> its values as doubles, row-major.
std::vector<double> to_host(const Tensor& t);

// Logits copied to the host with each row's first argmax.
struct HostLogits {
  std::vector<double> v;  // [B * classes]
  int64_t rows = 0, classes = 0;
  std::vector<int64_t> pred;
  double at(int64_t r, int64_t c) const { return v[static_cast<size_t>(r * classes + c)]; }
};
HostLogits host_logits(const Tensor& logits);

// Labels as an int64 host vector; checks they are a 1-D int64 tensor of n entries.
std::vector<int64_t> host_labels(const char* op, const Tensor& y, int64_t n);

// --- tensors from host values, shaped like `like` (dtype, device) -------------
// One value per row, shaped [B, 1, ..., 1] to broadcast against `like`.
Tensor row_values(const std::vector<double>& v, const Tensor& like);
// Full tensor of the given shape from host doubles.
Tensor from_host(const std::vector<double>& v, const Shape& shape, const Tensor& like);
// One-hot rows [B, classes] (no gradient).
Tensor one_hot(const std::vector<int64_t>& labels, int64_t classes, const Tensor& like);
// int64 index tensor on like's device.
Tensor index_tensor(const std::vector<int64_t>& idx, const Tensor& like);

// --- row operations ------------------------------------------------------------
// Row r of the result is b's row where take_b[r], else a's row. Exact: it is
// a * (1 - m) + b * m with m in {0, 1}.
Tensor blend_rows(const Tensor& a, const Tensor& b, const std::vector<uint8_t>& take_b);
// Rows `rows` of x (a copy).
Tensor take_rows(const Tensor& x, const std::vector<int64_t>& rows);
// base with its rows `rows[j]` replaced by values' row j.
Tensor put_rows(const Tensor& base, const std::vector<int64_t>& rows, const Tensor& values);
// Column j of a 2-D tensor, differentiable: [B].
Tensor column(const Tensor& m, int64_t j);
// max_i |a_i - b_i| per row, on the host.
std::vector<double> linf_distance(const Tensor& a, const Tensor& b);
// Projection onto the eps-ball around `clean` intersected with [0, 1].
Tensor project_linf(const Tensor& x, const Tensor& clean, double eps);

// The same set as per-element bounds lo = max(clean - eps, 0) and
// hi = min(clean + eps, 1), made once per attack run: an attack projects every
// iteration, and clip() is two ops where project_linf is five. For clean in
// [0, 1] clip(x) equals project_linf(x, clean, eps) exactly (only comparisons;
// the bounds are computed by the same ops).
struct LinfBox {
  Tensor lo, hi;
  LinfBox() = default;
  LinfBox(const Tensor& clean, double eps);
  Tensor clip(const Tensor& x) const;
};

// Indices r with flags[r] set.
std::vector<int64_t> where(const std::vector<uint8_t>& flags);

// Checks the common preconditions of an attack: x floating [B, ...], B
// labels, B sample ids.
void check_batch(const char* op, const Tensor& x, const std::vector<int64_t>& y, const std::vector<int64_t>& ids);

}  // namespace advcl::autoattack
