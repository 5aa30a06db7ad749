// CUDA side of the reductions (engine/ops/reduce_cuda.h): one thread per
// output element calling the shared kernels/reduce.h functions, except for
// long sums, which take a block per output element (a fixed-order tree, so
// still deterministic) instead of leaving one thread to walk them alone.
#include "cuda/block_reduce.cuh"
#include "engine/kernels/reduce.h"
#include "engine/ops/reduce_cuda.h"

namespace advcl::cuda_ops {

using kernels::ReduceShape;

namespace {

// Sums of at least this many elements use a block each.
constexpr int64_t kBlockSum = 1024;

template <class T>
struct SumAlong {
  const T* x;
  T* out;
  ReduceShape s;
  double scale;
  __device__ void operator()(int64_t o) const {
    out[o] = static_cast<T>(static_cast<double>(kernels::sum_along(x, s, o)) * scale);
  }
};

template <class T>
__global__ void sum_along_block_kernel(const T* x, T* out, ReduceShape s, double scale) {
  const int64_t outs = s.outer * s.inner;
  for (int64_t o = blockIdx.x; o < outs; o += gridDim.x) {
    const T* p = x + s.base(o);
    double acc = 0;
    for (int64_t k = threadIdx.x; k < s.n; k += blockDim.x) acc += static_cast<double>(p[k * s.inner]);
    acc = cuda::block_sum(acc);
    // As the CPU: the sum is rounded to T before scaling.
    if (threadIdx.x == 0) out[o] = static_cast<T>(static_cast<double>(static_cast<T>(acc)) * scale);
  }
}

template <class T>
struct ArgExtreme {
  const T* x;
  int64_t* idx;
  T* val;
  ReduceShape s;
  int sign;
  __device__ void operator()(int64_t o) const {
    int64_t k = kernels::arg_extreme_along(x, s, o, sign);
    idx[o] = k;
    if (val) val[o] = x[s.base(o) + k * s.inner];
  }
};

template <class T>
struct ExpandAlong {
  const T* g;
  T* gx;
  ReduceShape s;
  double scale;
  __device__ void operator()(int64_t i) const {
    int64_t o = i / (s.n * s.inner), in = i % s.inner;
    gx[i] = static_cast<T>(static_cast<double>(g[o * s.inner + in]) * scale);
  }
};

template <class T>
struct ScatterAlong {
  const T* g;
  const int64_t* idx;
  T* gx;
  ReduceShape s;
  __device__ void operator()(int64_t o) const { gx[s.base(o) + idx[o] * s.inner] = g[o]; }
};

template <class T>
struct TopkRow {
  const T* x;
  T* vals;
  int64_t* idx;
  int64_t n, k;
  __device__ void operator()(int64_t r) const { kernels::topk_row(x + r * n, n, k, vals + r * k, idx + r * k); }
};

template <class T>
struct TopkBackwardRow {
  const T* g;
  const int64_t* idx;
  T* gx;
  int64_t n, k;
  __device__ void operator()(int64_t r) const {
    for (int64_t j = 0; j < k; ++j) gx[r * n + idx[r * k + j]] += g[r * k + j];
  }
};

template <class T>
struct L2NormalizeRow {
  const T* x;
  T* y;
  int64_t d;
  double eps;
  __device__ void operator()(int64_t r) const { kernels::l2_normalize_row(x, y, d, r, eps); }
};

template <class T>
struct L2NormalizeBackwardRow {
  const T *x, *g;
  T* gx;
  int64_t d;
  double eps;
  __device__ void operator()(int64_t r) const { kernels::l2_normalize_backward_row(x, g, gx, d, r, eps); }
};

}  // namespace

template <class T>
void sum_along(const T* x, T* out, const ReduceShape& s, double scale) {
  int64_t outs = s.outer * s.inner;
  if (outs <= 0) return;
  if (s.n >= kBlockSum) {
    sum_along_block_kernel<T><<<cuda::blocks_per_item(outs), cuda::kThreads, 0, cuda::stream()>>>(x, out, s, scale);
    ADVCL_CUDA_CHECK_LAUNCH("sum", "sum_along_block_kernel");
  } else {
    cuda::launch("sum", outs, SumAlong<T>{x, out, s, scale});
  }
}

template <class T>
void arg_extreme_along(const T* x, int64_t* idx, T* val, const ReduceShape& s, int sign) {
  cuda::launch("max/min", s.n > 0 ? s.outer * s.inner : 0, ArgExtreme<T>{x, idx, val, s, sign});
}

template <class T>
void expand_along(const T* g, T* gx, const ReduceShape& s, double scale) {
  cuda::launch("sum backward", s.outer * s.n * s.inner, ExpandAlong<T>{g, gx, s, scale});
}

// gx is zeroed by the caller (a Tensor::zeros); only the chosen entries are written.
template <class T>
void scatter_along(const T* g, const int64_t* idx, T* gx, const ReduceShape& s) {
  cuda::launch("max/min backward", s.outer * s.inner, ScatterAlong<T>{g, idx, gx, s});
}

template <class T>
void topk_rows(const T* x, T* vals, int64_t* idx, int64_t rows, int64_t n, int64_t k) {
  cuda::launch("topk", k > 0 ? rows : 0, TopkRow<T>{x, vals, idx, n, k});
}

template <class T>
void topk_backward(const T* g, const int64_t* idx, T* gx, int64_t rows, int64_t n, int64_t k) {
  cuda::launch("topk backward", rows, TopkBackwardRow<T>{g, idx, gx, n, k});
}

template <class T>
void l2_normalize_rows(const T* x, T* y, int64_t rows, int64_t d, double eps) {
  cuda::launch("l2_normalize", rows, L2NormalizeRow<T>{x, y, d, eps});
}

template <class T>
void l2_normalize_backward(const T* x, const T* g, T* gx, int64_t rows, int64_t d, double eps) {
  cuda::launch("l2_normalize backward", rows, L2NormalizeBackwardRow<T>{x, g, gx, d, eps});
}

#define ADVCL_REDUCE(T)                                                                             \
  template void sum_along<T>(const T*, T*, const ReduceShape&, double);                             \
  template void arg_extreme_along<T>(const T*, int64_t*, T*, const ReduceShape&, int);              \
  template void expand_along<T>(const T*, T*, const ReduceShape&, double);                          \
  template void scatter_along<T>(const T*, const int64_t*, T*, const ReduceShape&);                 \
  template void topk_rows<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t);                    \
  template void topk_backward<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t);          \
  template void l2_normalize_rows<T>(const T*, T*, int64_t, int64_t, double);                       \
  template void l2_normalize_backward<T>(const T*, const T*, T*, int64_t, int64_t, double);
ADVCL_REDUCE(float)
ADVCL_REDUCE(double)

}  // namespace advcl::cuda_ops
