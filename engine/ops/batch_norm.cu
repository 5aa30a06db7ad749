// CUDA side of batch norm (engine/ops/batch_norm_cuda.h). The statistics and
// the backward's sums take two fixed-order levels: many blocks per channel,
// one per (unit, channel, chunk), each thread accumulating a few values in
// the input's precision (float for float32), the block reducing its threads'
// partials in double in a fixed tree; then one thread per (unit, channel)
// combines the chunks in double, in chunk order (deterministic).
// Every per-element and per-channel step is a launch of the same
// kernels/batch_norm.h functions as the CPU loop.
#include "cuda/block_reduce.cuh"
#include "engine/ops/batch_norm_cuda.h"

namespace advcl::cuda_ops {

using kernels::BNLayout;

namespace {

template <class T>
__global__ void chunk_sums_kernel(const T* x, BNLayout L, double* part_s, double* part_q) {
  const int64_t K = L.chunks(), total = L.units() * L.C * K;
  for (int64_t i = blockIdx.x; i < total; i += gridDim.x) {
    const int64_t uc = i / K, u = uc / L.C, c = uc % L.C;
    int64_t r0, r1;
    L.chunk_range(u, i % K, r0, r1);
    const T shift = kernels::bn_shift(x, L, u, c);
    T s = 0, q = 0;
    const int64_t n = (r1 - r0) * L.S;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      kernels::bn_accumulate<T>(x[L.index(r0 + j / L.S, c, j % L.S)], shift, s, q);
    const double ds = cuda::block_sum(static_cast<double>(s)), dq = cuda::block_sum(static_cast<double>(q));
    if (threadIdx.x == 0) {
      part_s[i] = ds;
      part_q[i] = dq;
    }
  }
}

template <class T>
__global__ void chunk_backward_sums_kernel(const T* g, const T* x, BNLayout L, const double* mean, double* part_g,
                                           double* part_gx) {
  const int64_t K = L.chunks(), total = L.units() * L.C * K;
  for (int64_t i = blockIdx.x; i < total; i += gridDim.x) {
    const int64_t uc = i / K, c = uc % L.C;
    int64_t r0, r1;
    L.chunk_range(uc / L.C, i % K, r0, r1);
    const T m = static_cast<T>(mean[uc]);
    T a = 0, b = 0;
    const int64_t n = (r1 - r0) * L.S;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const int64_t at = L.index(r0 + j / L.S, c, j % L.S);
      kernels::bn_accumulate_backward<T>(g[at], x[at], m, a, b);
    }
    const double da = cuda::block_sum(static_cast<double>(a)), db = cuda::block_sum(static_cast<double>(b));
    if (threadIdx.x == 0) {
      part_g[i] = da;
      part_gx[i] = db;
    }
  }
}

template <class T>
struct CombineStats {
  const T* x;
  BNLayout L;
  const double *part_s, *part_q;
  double *sum, *sum_sq;
  __device__ void operator()(int64_t uc) const {
    const int64_t u = uc / L.C, K = L.chunks();
    kernels::bn_combine_stats(part_s + uc * K, part_q + uc * K, K,
                              static_cast<double>(kernels::bn_shift(x, L, u, uc % L.C)),
                              static_cast<double>(L.rows(u) * L.S), sum[uc], sum_sq[uc]);
  }
};

struct CombineSums {
  int64_t K;
  const double *part_a, *part_b;
  double *a, *b;
  __device__ void operator()(int64_t uc) const {
    a[uc] = kernels::bn_combine(part_a + uc * K, K);
    b[uc] = kernels::bn_combine(part_b + uc * K, K);
  }
};

template <class P>
struct Finish {
  BNLayout L;
  kernels::BnViewParams<P> p;
  bool training;
  double full_count, eps, momentum;
  const double *sum, *sum_sq;
  double *mean, *invstd, *w, *b;
  __device__ void operator()(int64_t c) const {
    kernels::bn_finish_channel(L, c, p, training, full_count, eps, momentum, sum, sum_sq, mean, invstd, w, b);
  }
};

template <class T>
struct Normalize {
  const T* x;
  BNLayout L;
  const double *mean, *invstd, *w, *b;
  bool relu;
  T* y;
  __device__ void operator()(int64_t i) const {
    const int64_t at = L.unit_channel(i);
    y[i] = kernels::bn_apply(x[i], kernels::bn_forward_affine(mean[at], invstd[at], w[at], b[at]), relu);
  }
};

template <class T>
struct BackwardElem {
  const T *g, *x;
  BNLayout L;
  const double *mean, *invstd, *w, *sum_g, *sum_gx;
  bool training;
  double full_count;  // a full unit's count: global when synchronised across ranks
  T* gx;
  __device__ void operator()(int64_t i) const {
    const int64_t at = L.unit_channel(i);
    gx[i] = kernels::bn_apply_grad(g[i], x[i],
                                   kernels::bn_backward_affine(mean[at], invstd[at], w[at], sum_g[at], sum_gx[at],
                                                               L.count(at / L.C, full_count), training));
  }
};

struct ParamGrads {
  BNLayout L;
  kernels::BnViewSets view_sets;
  const double *sum_g, *sum_gx, *invstd;
  double *gw, *gb;
  __device__ void operator()(int64_t i) const {
    kernels::bn_param_grads(L, i % L.C, view_sets, static_cast<int>(i / L.C), sum_g, sum_gx, invstd, gw[i], gb[i]);
  }
};

int64_t chunk_blocks(const BNLayout& L) { return L.units() * L.C * L.chunks(); }

}  // namespace

template <class T>
void bn_stats(const T* x, const BNLayout& L, double* part_s, double* part_q, double* sum, double* sum_sq) {
  if (L.C <= 0) return;
  chunk_sums_kernel<T><<<cuda::blocks_per_item(chunk_blocks(L)), cuda::kThreads, 0, cuda::stream()>>>(x, L, part_s,
                                                                                                       part_q);
  ADVCL_CUDA_CHECK_LAUNCH("batch_norm", "chunk_sums_kernel");
  cuda::launch("batch_norm", L.units() * L.C, CombineStats<T>{x, L, part_s, part_q, sum, sum_sq});
}

template <class P>
void bn_finish(const BNLayout& L, const kernels::BnViewParams<P>& p, bool training, double full_count, double eps,
               double momentum, const double* sum, const double* sum_sq, double* mean, double* invstd, double* w,
               double* b) {
  cuda::launch("batch_norm", L.C, Finish<P>{L, p, training, full_count, eps, momentum, sum, sum_sq, mean, invstd, w, b});
}

template <class T>
void bn_normalize(const T* x, const BNLayout& L, const double* mean, const double* invstd, const double* w,
                  const double* b, bool relu, T* y) {
  cuda::launch("batch_norm", L.N * L.C * L.S, Normalize<T>{x, L, mean, invstd, w, b, relu, y});
}

template <class T>
void bn_backward_sums(const T* g, const T* x, const BNLayout& L, const double* mean, double* part_g, double* part_gx,
                      double* sum_g, double* sum_gx) {
  if (L.C <= 0) return;
  chunk_backward_sums_kernel<T><<<cuda::blocks_per_item(chunk_blocks(L)), cuda::kThreads, 0, cuda::stream()>>>(
      g, x, L, mean, part_g, part_gx);
  ADVCL_CUDA_CHECK_LAUNCH("batch_norm backward", "chunk_backward_sums_kernel");
  cuda::launch("batch_norm backward", L.units() * L.C, CombineSums{L.chunks(), part_g, part_gx, sum_g, sum_gx});
}

template <class T>
void bn_backward_elem(const T* g, const T* x, const BNLayout& L, const double* mean, const double* invstd,
                      const double* w, const double* sum_g, const double* sum_gx, bool training, double full_count,
                      T* gx) {
  cuda::launch("batch_norm backward", L.N * L.C * L.S,
               BackwardElem<T>{g, x, L, mean, invstd, w, sum_g, sum_gx, training, full_count, gx});
}

void bn_param_grads(const BNLayout& L, const kernels::BnViewSets& view_sets, int64_t sets, const double* sum_g,
                    const double* sum_gx, const double* invstd, double* gw, double* gb) {
  cuda::launch("batch_norm backward", sets * L.C, ParamGrads{L, view_sets, sum_g, sum_gx, invstd, gw, gb});
}

#define ADVCL_BN(T)                                                                                              \
  template void bn_stats<T>(const T*, const BNLayout&, double*, double*, double*, double*);                     \
  template void bn_finish<T>(const BNLayout&, const kernels::BnViewParams<T>&, bool, double, double, double,    \
                             const double*, const double*, double*, double*, double*, double*);                 \
  template void bn_normalize<T>(const T*, const BNLayout&, const double*, const double*, const double*,         \
                                const double*, bool, T*);                                                           \
  template void bn_backward_sums<T>(const T*, const T*, const BNLayout&, const double*, double*, double*,       \
                                    double*, double*);                                                          \
  template void bn_backward_elem<T>(const T*, const T*, const BNLayout&, const double*, const double*,          \
                                    const double*, const double*, const double*, bool, double, T*);
ADVCL_BN(float)
ADVCL_BN(double)

}  // namespace advcl::cuda_ops
