#include "nn/parallel/consistency.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace advcl::dist {

namespace {

// FNV-1a over the tensor's bytes (host copy): equal hashes on all ranks mean
// equal values, barring a collision that a debug check can live with.
uint64_t hash_bytes(const Tensor& t) {
  Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  const unsigned char* p = static_cast<const unsigned char*>(host.raw_data());
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < host.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace

ConsistencyReport compare_across_ranks(const nn::StateDict& tensors, Communicator& comm) {
  ConsistencyReport r;
  if (comm.size() == 1) return r;
  std::vector<uint64_t> mine, root;
  for (const nn::NamedTensor& t : tensors) mine.push_back(hash_bytes(t.tensor));
  mine.push_back(tensors.size());  // a rank with another list of tensors differs too
  root = mine;
  comm.broadcast(root.data(), root.size() * sizeof(uint64_t), 0, "consistency check (hashes)");
  // Per tensor: 1 where this rank differs from rank 0; summed over ranks.
  std::vector<double> differs(tensors.size() + 1);
  for (size_t i = 0; i < mine.size(); ++i) differs[i] = mine[i] != root[i] ? 1.0 : 0.0;
  comm.all_reduce(differs.data(), static_cast<int64_t>(differs.size()), ReduceOp::Sum, "consistency check (flags)");
  if (differs.back() > 0)
    fail("consistency check: the ranks hold different numbers of tensors (this rank: ", tensors.size(), ")");
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (differs[i] == 0) continue;
    const Tensor& t = tensors[i].tensor;
    ++r.mismatched;
    if (!r.first_mismatch.empty()) continue;
    r.consistent = false;
    r.first_mismatch = tensors[i].name;
    // The values of rank 0 against this rank's, for the message.
    Tensor ref = t.to(Device::cpu()).to(DType::Float64).clone();
    comm.broadcast(ref, 0, "consistency check (values)");
    std::vector<double> a = ref.to_vector<double>(), b = t.to(DType::Float64).to_vector<double>();
    double d = 0;
    for (size_t k = 0; k < a.size(); ++k) d = std::max(d, std::fabs(a[k] - b[k]));
    comm.all_reduce(&d, 1, ReduceOp::Max, "consistency check (difference)");
    r.max_abs_diff = d;
  }
  return r;
}

void check_consistent(const nn::StateDict& tensors, const std::string& when, Communicator& comm) {
  ConsistencyReport r = compare_across_ranks(tensors, comm);
  if (r.consistent) return;
  fail("data parallel: the ranks' models diverged ", when, ": '", r.first_mismatch, "' differs by up to ",
       r.max_abs_diff, " from rank 0 (", r.mismatched, " tensors differ)");
}

}  // namespace advcl::dist
