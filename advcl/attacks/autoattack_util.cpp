#include "advcl/attacks/autoattack_util.h"

#include <algorithm>
#include <cmath>

#include "engine/ops.h"

namespace advcl::autoattack {

std::vector<double> to_host(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

HostLogits host_logits(const Tensor& logits) {
  check_dim("autoattack logits", logits, 2, "logits");
  HostLogits h;
  h.rows = logits.size(0);
  h.classes = logits.size(1);
  if (h.classes < 2) fail("autoattack: the model returns ", h.classes, " logits per input; need at least 2 classes");
  h.v = to_host(logits);
  h.pred.resize(static_cast<size_t>(h.rows));
  for (int64_t r = 0; r < h.rows; ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < h.classes; ++c)
      if (h.at(r, c) > h.at(r, best)) best = c;  // first maximum, as argmax
    h.pred[static_cast<size_t>(r)] = best;
  }
  return h;
}

std::vector<int64_t> host_labels(const char* op, const Tensor& y, int64_t n) {
  check_dtype(op, y, DType::Int64);
  check_dim(op, y, 1, "label tensor");
  if (y.size(0) != n) fail(op, ": ", y.size(0), " labels for ", n, " inputs");
  return y.to_vector<int64_t>();
}

Tensor from_host(const std::vector<double>& v, const Shape& shape, const Tensor& like) {
  return Tensor::from_vector<double>(v, shape).to(like.dtype()).to(like.device());
}

Tensor row_values(const std::vector<double>& v, const Tensor& like) {
  Shape s(static_cast<size_t>(like.dim()), 1);
  s[0] = static_cast<int64_t>(v.size());
  return from_host(v, s, like);
}

Tensor one_hot(const std::vector<int64_t>& labels, int64_t classes, const Tensor& like) {
  std::vector<double> v(labels.size() * static_cast<size_t>(classes), 0.0);
  for (size_t r = 0; r < labels.size(); ++r) {
    if (labels[r] < 0 || labels[r] >= classes) fail("autoattack: label ", labels[r], " out of range for ", classes, " classes");
    v[r * static_cast<size_t>(classes) + static_cast<size_t>(labels[r])] = 1.0;
  }
  return from_host(v, {static_cast<int64_t>(labels.size()), classes}, like);
}

Tensor index_tensor(const std::vector<int64_t>& idx, const Tensor& like) {
  return Tensor::from_vector<int64_t>(idx, {static_cast<int64_t>(idx.size())}, like.device());
}

Tensor blend_rows(const Tensor& a, const Tensor& b, const std::vector<uint8_t>& take_b) {
  check_same_shape("blend_rows", a, b);
  if (static_cast<int64_t>(take_b.size()) != a.size(0))
    fail("blend_rows: ", take_b.size(), " flags for ", a.size(0), " rows");
  bool any = false, all = true;
  for (uint8_t f : take_b) {
    any = any || f;
    all = all && f;
  }
  if (!any) return a;
  if (all) return b;
  std::vector<double> m(take_b.begin(), take_b.end());
  Tensor mb = row_values(m, a);
  return ops::add(ops::mul(a, ops::rsub(mb, 1.0)), ops::mul(b, mb));
}

Tensor take_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  return ops::index_select(x, index_tensor(rows, x));
}

Tensor put_rows(const Tensor& base, const std::vector<int64_t>& rows, const Tensor& values) {
  if (values.size(0) != static_cast<int64_t>(rows.size()))
    fail("put_rows: ", rows.size(), " row indices for ", values.size(0), " rows of values");
  if (rows.empty()) return base;
  // One gather from [base; values]: row i comes from values where i is replaced.
  int64_t n = base.size(0);
  std::vector<int64_t> map(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) map[static_cast<size_t>(i)] = i;
  for (size_t j = 0; j < rows.size(); ++j) {
    if (rows[j] < 0 || rows[j] >= n) fail("put_rows: row ", rows[j], " out of range for ", n, " rows");
    map[static_cast<size_t>(rows[j])] = n + static_cast<int64_t>(j);
  }
  return ops::index_select(ops::cat({base, values}), index_tensor(map, base));
}

Tensor column(const Tensor& m, int64_t j) {
  check_dim("column", m, 2);
  std::vector<double> e(static_cast<size_t>(m.size(1)), 0.0);
  e[static_cast<size_t>(j)] = 1.0;
  return ops::sum(ops::mul(m, from_host(e, {1, m.size(1)}, m)), 1);
}

std::vector<double> linf_distance(const Tensor& a, const Tensor& b) {
  NoGradGuard no_grad;
  check_same_shape("linf_distance", a, b);
  if (a.size(0) == 0) return {};
  return to_host(ops::max(ops::abs(ops::flatten(ops::sub(a, b))), 1));
}

Tensor project_linf(const Tensor& x, const Tensor& clean, double eps) {
  NoGradGuard no_grad;
  Tensor p = ops::minimum(ops::maximum(x, ops::add(clean, -eps)), ops::add(clean, eps));
  return ops::clamp(p, 0.0, 1.0);
}

LinfBox::LinfBox(const Tensor& clean, double eps) {
  NoGradGuard no_grad;
  // clean in [0, 1]: clean - eps <= 1 and clean + eps >= 0, so the clamps are max(., 0) and min(., 1).
  lo = ops::clamp(ops::add(clean, -eps), 0.0, 1.0);
  hi = ops::clamp(ops::add(clean, eps), 0.0, 1.0);
}

Tensor LinfBox::clip(const Tensor& x) const {
  NoGradGuard no_grad;
  return ops::minimum(ops::maximum(x, lo), hi);
}

std::vector<int64_t> where(const std::vector<uint8_t>& flags) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < flags.size(); ++i)
    if (flags[i]) out.push_back(static_cast<int64_t>(i));
  return out;
}

void check_batch(const char* op, const Tensor& x, const std::vector<int64_t>& y, const std::vector<int64_t>& ids) {
  if (x.dim() < 2) fail(op, ": inputs must be [N, ...], got ", shape_str(x.shape()));
  if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
    fail(op, ": inputs must be float32 or float64, got ", dtype_name(x.dtype()));
  if (static_cast<int64_t>(y.size()) != x.size(0)) fail(op, ": ", y.size(), " labels for ", x.size(0), " inputs");
  if (static_cast<int64_t>(ids.size()) != x.size(0))
    fail(op, ": ", ids.size(), " sample ids for ", x.size(0), " inputs");
}

}  // namespace advcl::autoattack
