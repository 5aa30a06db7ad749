#include "engine/finite_check.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"

namespace advcl {

std::vector<size_t> non_finite_tensors(const std::vector<Tensor>& tensors) {
  NoGradGuard no_grad;  // the check is never part of a graph
  std::vector<Tensor> flags;
  std::vector<size_t> index;  // flags[i] belongs to tensors[index[i]]
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) continue;
    // 0 when every element is finite, NaN otherwise; float64 so that all
    // flags (float32, bfloat16 or float64 tensors) can be concatenated.
    flags.push_back(ops::sum(ops::mul(t.detach(), 0.0)).to(DType::Float64).view({1}));
    index.push_back(i);
  }
  std::vector<size_t> bad;
  if (flags.empty()) return bad;
  const std::vector<double> host = ops::cat(flags).to_vector<double>();  // the one read
  for (size_t k = 0; k < host.size(); ++k)
    if (host[k] != 0.0) bad.push_back(index[k]);  // NaN (!= 0 is true for NaN)
  return bad;
}

std::vector<std::string> non_finite_names(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  std::vector<Tensor> ts;
  ts.reserve(tensors.size());
  for (const auto& nt : tensors) ts.push_back(nt.second);
  std::vector<std::string> names;
  for (size_t i : non_finite_tensors(ts)) names.push_back(tensors[i].first);
  return names;
}

bool all_finite(const Tensor& t) { return non_finite_tensors({t}).empty(); }

}  // namespace advcl
