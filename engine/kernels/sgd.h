// The SGD update of torch.optim.SGD (dampening 0, nesterov off), for many
// parameters at once: one table lists every (parameter, gradient, momentum
// buffer), cut into chunks of kSgdChunk elements; the CPU runs one parallel
// loop over all chunks and a GPU one launch (a block per chunk) over the
// same table, passed by value. Per element, in the parameter's precision (as
// the separate ops it replaces computed it, so results are unchanged):
//   d   = g + weight_decay * p          (when weight_decay != 0)
//   buf = d                             (a parameter's first step)
//   buf = momentum * buf + d            (later steps; when momentum != 0)
//   p   = p - lr * buf                  (p - lr * d without momentum)
#pragma once
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

constexpr int64_t kSgdChunk = 4096;
// Tensors per table: a table is a kernel argument (about 12 KiB here; GPUs
// from sm_70 take up to 32 KiB since CUDA 12.1). ResNet-18 with three BN
// sets and AdvCL's heads fits one table.
constexpr int kSgdMaxTensors = 256;

template <class T>
struct SgdTensor {
  T* p;
  const T* g;
  T* buf;      // null without momentum
  int64_t n;   // elements
  bool first;  // buf is uninitialised: this is the parameter's first step
};

template <class T>
struct SgdTable {
  int count;
  int64_t chunk_start[kSgdMaxTensors + 1];  // prefix sums of the tensors' chunk counts
  SgdTensor<T> t[kSgdMaxTensors];
};

struct SgdHyper {
  double lr, momentum, weight_decay;
};

template <class T>
ADVCL_HD void sgd_elem(T& p, T g, T* buf, bool first, const SgdHyper& h) {
  T d = g;
  if (h.weight_decay != 0) d = g + p * static_cast<T>(h.weight_decay);
  if (buf) {
    T b = first ? d : *buf * static_cast<T>(h.momentum) + d;
    *buf = b;
    d = b;
  }
  p = p - d * static_cast<T>(h.lr);
}

// The table entry that holds chunk `chunk` (binary search over chunk_start).
template <class T>
ADVCL_HD int sgd_tensor_of_chunk(const SgdTable<T>& tab, int64_t chunk) {
  int lo = 0, hi = tab.count - 1;
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (tab.chunk_start[mid] <= chunk) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// Updates the elements lane, lane + lanes, ... of chunk `chunk` (the CPU: one
// lane; a GPU block: one lane per thread).
template <class T>
ADVCL_HD void sgd_chunk(const SgdTable<T>& tab, int64_t chunk, int64_t lane, int64_t lanes, const SgdHyper& h) {
  const int k = sgd_tensor_of_chunk(tab, chunk);
  const SgdTensor<T>& e = tab.t[k];
  int64_t begin = (chunk - tab.chunk_start[k]) * kSgdChunk;
  int64_t end = begin + kSgdChunk < e.n ? begin + kSgdChunk : e.n;
  for (int64_t i = begin + lane; i < end; i += lanes) sgd_elem(e.p[i], e.g[i], e.buf ? e.buf + i : nullptr, e.first, h);
}

// Chunks of n elements.
ADVCL_HD int64_t sgd_chunks(int64_t n) { return (n + kSgdChunk - 1) / kSgdChunk; }

}  // namespace advcl::kernels
