// CUDA side of batch norm (engine/ops/batch_norm_cuda.h). The per-channel
// sums run one block per channel with a fixed-order tree reduction in double
// (deterministic); the per-element passes are grid launches of the same
// kernels/batch_norm.h functions as the CPU loop.
#include "cuda/block_reduce.cuh"
#include "engine/ops/batch_norm_cuda.h"

namespace advcl::cuda_ops {

using kernels::BNShape;

namespace {

template <class T>
__global__ void channel_sums_kernel(const T* x, BNShape s, double* sum, double* sum_sq) {
  const int64_t per = s.N * s.S;
  for (int64_t c = blockIdx.x; c < s.C; c += gridDim.x) {
    double a = 0, q = 0;
    for (int64_t i = threadIdx.x; i < per; i += blockDim.x) {
      double v = static_cast<double>(x[((i / s.S) * s.C + c) * s.S + i % s.S]);
      a += v;
      q += v * v;
    }
    a = cuda::block_sum(a);
    q = cuda::block_sum(q);
    if (threadIdx.x == 0) {
      sum[c] = a;
      sum_sq[c] = q;
    }
  }
}

template <class T>
__global__ void backward_sums_kernel(const T* g, const T* x, BNShape s, const double* mean, double* sum_g,
                                     double* sum_gx) {
  const int64_t per = s.N * s.S;
  for (int64_t c = blockIdx.x; c < s.C; c += gridDim.x) {
    double a = 0, b = 0;
    for (int64_t i = threadIdx.x; i < per; i += blockDim.x) {
      int64_t at = ((i / s.S) * s.C + c) * s.S + i % s.S;
      double gv = static_cast<double>(g[at]);
      a += gv;
      b += gv * (static_cast<double>(x[at]) - mean[c]);
    }
    a = cuda::block_sum(a);
    b = cuda::block_sum(b);
    if (threadIdx.x == 0) {
      sum_g[c] = a;
      sum_gx[c] = b;
    }
  }
}

template <class T>
struct Normalize {
  const T* x;
  BNShape s;
  const double *mean, *invstd, *w, *b;
  T* y;
  __device__ void operator()(int64_t i) const {
    int64_t c = s.channel(i);
    y[i] = kernels::bn_normalize(x[i], mean[c], invstd[c], w[c], b[c]);
  }
};

template <class T>
struct BackwardElem {
  const T *g, *x;
  BNShape s;
  const double *mean, *invstd, *w, *sum_g, *sum_gx;
  bool training;
  double count;  // the statistics' count: global when synchronised across ranks
  T* gx;
  __device__ void operator()(int64_t i) const {
    int64_t c = s.channel(i);
    gx[i] = training ? kernels::bn_backward_elem(g[i], x[i], mean[c], invstd[c], w[c], sum_g[c], sum_gx[c], count)
                     : static_cast<T>(static_cast<double>(g[i]) * w[c] * invstd[c]);
  }
};

template <class R>
struct TrainChannels {
  const double *sum, *sum_sq;
  double count, eps, momentum;
  R *running_mean, *running_var;
  double *mean, *invstd;
  __device__ void operator()(int64_t c) const {
    kernels::bn_train_channel(sum[c], sum_sq[c], count, eps, momentum, running_mean ? running_mean + c : nullptr,
                              running_var ? running_var + c : nullptr, mean[c], invstd[c]);
  }
};

template <class R>
struct EvalChannels {
  const R *running_mean, *running_var;
  double eps;
  double *mean, *invstd;
  __device__ void operator()(int64_t c) const {
    kernels::bn_eval_channel(running_mean[c], running_var[c], eps, mean[c], invstd[c]);
  }
};

}  // namespace

template <class R>
void bn_train_channels(const double* sum, const double* sum_sq, int64_t C, double count, double eps, double momentum,
                       R* running_mean, R* running_var, double* mean, double* invstd) {
  cuda::launch("batch_norm", C,
               TrainChannels<R>{sum, sum_sq, count, eps, momentum, running_mean, running_var, mean, invstd});
}

template <class R>
void bn_eval_channels(const R* running_mean, const R* running_var, int64_t C, double eps, double* mean,
                      double* invstd) {
  cuda::launch("batch_norm", C, EvalChannels<R>{running_mean, running_var, eps, mean, invstd});
}

template <class T>
void bn_channel_sums(const T* x, const BNShape& s, double* sum, double* sum_sq) {
  if (s.C <= 0) return;
  channel_sums_kernel<T><<<cuda::blocks_per_item(s.C), cuda::kThreads, 0, cuda::stream()>>>(x, s, sum, sum_sq);
  ADVCL_CUDA_CHECK_LAUNCH("batch_norm", "channel_sums_kernel");
}

template <class T>
void bn_normalize(const T* x, const BNShape& s, const double* mean, const double* invstd, const double* w,
                  const double* b, T* y) {
  cuda::launch("batch_norm", s.N * s.C * s.S, Normalize<T>{x, s, mean, invstd, w, b, y});
}

template <class T>
void bn_backward_sums(const T* g, const T* x, const BNShape& s, const double* mean, double* sum_g, double* sum_gx) {
  if (s.C <= 0) return;
  backward_sums_kernel<T>
      <<<cuda::blocks_per_item(s.C), cuda::kThreads, 0, cuda::stream()>>>(g, x, s, mean, sum_g, sum_gx);
  ADVCL_CUDA_CHECK_LAUNCH("batch_norm backward", "backward_sums_kernel");
}

template <class T>
void bn_backward_elem(const T* g, const T* x, const BNShape& s, const double* mean, const double* invstd,
                      const double* w, const double* sum_g, const double* sum_gx, bool training, double count,
                      T* gx) {
  cuda::launch("batch_norm backward", s.N * s.C * s.S,
               BackwardElem<T>{g, x, s, mean, invstd, w, sum_g, sum_gx, training, count, gx});
}

#define ADVCL_BN(T)                                                                                                \
  template void bn_channel_sums<T>(const T*, const BNShape&, double*, double*);                                   \
  template void bn_normalize<T>(const T*, const BNShape&, const double*, const double*, const double*,            \
                                const double*, T*);                                                               \
  template void bn_backward_sums<T>(const T*, const T*, const BNShape&, const double*, double*, double*);          \
  template void bn_backward_elem<T>(const T*, const T*, const BNShape&, const double*, const double*, const double*, \
                                    const double*, const double*, bool, double, T*);                               \
  template void bn_train_channels<T>(const double*, const double*, int64_t, double, double, double, T*, T*,       \
                                     double*, double*);                                                           \
  template void bn_eval_channels<T>(const T*, const T*, int64_t, double, double*, double*);
ADVCL_BN(float)
ADVCL_BN(double)

}  // namespace advcl::cuda_ops
