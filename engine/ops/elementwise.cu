// CUDA side of the broadcasting binary ops and of sum_to
// (engine/ops/elementwise_cuda.h). Unary ops: engine/ops/elementwise_unary.cu.
#include "cuda/launch.cuh"
#include "engine/kernels/sum_to_index.h"
#include "engine/kernels/elementwise.h"
#include "engine/ops/elementwise_cuda.h"

namespace advcl::cuda_ops {

using kernels::SumToIndex;
using kernels::BroadcastIndex;

namespace {

template <class Op, class T>
struct BinaryFwd {
  Op op;
  BroadcastIndex idx;
  const T *a, *b;
  T* y;
  __device__ void operator()(int64_t i) const {
    int64_t oa, ob;
    idx.offsets(i, oa, ob);
    y[i] = op.fwd(a[oa], b[ob]);
  }
};

// Same-shape inputs: no index arithmetic (the common case in a network).
template <class Op, class T>
struct BinaryFwdPlain {
  Op op;
  const T *a, *b;
  T* y;
  __device__ void operator()(int64_t i) const { y[i] = op.fwd(a[i], b[i]); }
};

template <class Op, class T>
struct BinaryBwdPlain {
  Op op;
  const T *a, *b, *g;
  T* out;
  int which;
  __device__ void operator()(int64_t i) const {
    out[i] = which == 0 ? op.da(a[i], b[i], g[i]) : op.db(a[i], b[i], g[i]);
  }
};

// True when neither input is broadcast: both are laid out like the output.
bool plain(const BroadcastIndex& idx) {
  int64_t s = 1;
  for (int d = idx.ndim - 1; d >= 0; --d) {
    if (idx.sizes[d] != 1 && (idx.a_strides[d] != s || idx.b_strides[d] != s)) return false;
    s *= idx.sizes[d];
  }
  return true;
}

template <class Op, class T>
struct BinaryBwd {
  Op op;
  BroadcastIndex idx;
  const T *a, *b, *g;
  T* out;
  int which;
  __device__ void operator()(int64_t i) const {
    int64_t oa, ob;
    idx.offsets(i, oa, ob);
    out[i] = which == 0 ? op.da(a[oa], b[ob], g[i]) : op.db(a[oa], b[ob], g[i]);
  }
};

// Few inputs per output: one thread per output element, summing in order.
template <class T>
struct SumToThread {
  SumToIndex si;
  const T* x;
  T* out;
  int64_t per_out;
  __device__ void operator()(int64_t j) const {
    T s = 0;
    for (int64_t r = 0; r < per_out; ++r) s += x[si.in_offset(j, r)];
    out[j] = s;
  }
};

// Many inputs per output: one block per output element, a fixed tree
// reduction over its threads' partial sums.
template <class T>
__global__ void sum_to_block_kernel(SumToIndex si, const T* x, T* out, int64_t n_out, int64_t per_out) {
  __shared__ T part[cuda::kThreads];
  for (int64_t j = blockIdx.x; j < n_out; j += gridDim.x) {
    T s = 0;
    for (int64_t r = threadIdx.x; r < per_out; r += blockDim.x) s += x[si.in_offset(j, r)];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
      if (static_cast<int>(threadIdx.x) < w) part[threadIdx.x] += part[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) out[j] = part[0];
    __syncthreads();  // part[] is reused by the next j
  }
}

}  // namespace

template <class Op, class T>
void binary_forward(const Op& op, const BroadcastIndex& idx, const T* a, const T* b, T* y, int64_t n) {
  if (plain(idx))
    cuda::launch("elementwise binary forward", n, BinaryFwdPlain<Op, T>{op, a, b, y});
  else
    cuda::launch("elementwise binary forward", n, BinaryFwd<Op, T>{op, idx, a, b, y});
}

template <class Op, class T>
void binary_backward(const Op& op, const BroadcastIndex& idx, const T* a, const T* b, const T* g, T* out, int which,
                     int64_t n) {
  if (plain(idx))
    cuda::launch("elementwise binary backward", n, BinaryBwdPlain<Op, T>{op, a, b, g, out, which});
  else
    cuda::launch("elementwise binary backward", n, BinaryBwd<Op, T>{op, idx, a, b, g, out, which});
}

template <class T>
void sum_to(const BroadcastIndex& idx, const T* x, T* out, int64_t n_in, int64_t n_out) {
  if (n_out <= 0) return;
  SumToIndex si(idx);
  int64_t per_out = n_in / n_out;
  // Every output element is written (the caller's zero fill is not needed).
  if (per_out < 64) {
    cuda::launch("sum_to", n_out, SumToThread<T>{si, x, out, per_out});
  } else {
    unsigned blocks = static_cast<unsigned>(n_out < cuda::kMaxBlocks ? n_out : cuda::kMaxBlocks);
    sum_to_block_kernel<T><<<blocks, cuda::kThreads, 0, cuda::stream()>>>(si, x, out, n_out, per_out);
    ADVCL_CUDA_CHECK_LAUNCH("sum_to", "sum_to_block_kernel");
  }
}

#define ADVCL_BINARY(Op, T)                                                                                        \
  template void binary_forward<kernels::Op, T>(const kernels::Op&, const BroadcastIndex&, const T*, const T*, T*, \
                                                int64_t);                                                          \
  template void binary_backward<kernels::Op, T>(const kernels::Op&, const BroadcastIndex&, const T*, const T*,   \
                                                 const T*, T*, int, int64_t);
#define ADVCL_BINARY_FD(Op) ADVCL_BINARY(Op, float) ADVCL_BINARY(Op, double)

ADVCL_BINARY_FD(Add)
ADVCL_BINARY_FD(Sub)
ADVCL_BINARY_FD(Mul)
ADVCL_BINARY_FD(Div)
ADVCL_BINARY_FD(Minimum)
ADVCL_BINARY_FD(Maximum)
ADVCL_BINARY_FD(AddRelu)

template void sum_to<float>(const BroadcastIndex&, const float*, float*, int64_t, int64_t);
template void sum_to<double>(const BroadcastIndex&, const double*, double*, int64_t, int64_t);

}  // namespace advcl::cuda_ops
