// CUDA side of softmax, cross-entropy and KL (engine/ops/softmax_cuda.h).
// Row ops give each row a warp: its 32 lanes share the row's elements
// (coalesced reads), reduce their partials in a fixed xor-shuffle tree (the
// same bits on every run and in every lane) and write their share; the
// per-lane math is the kernels/softmax.h functions that the CPU loop runs
// with one lane. KL is elementwise: a thread per element.
#include <cmath>

#include "cuda/block_reduce.cuh"
#include "engine/kernels/softmax.h"
#include "engine/ops/softmax_cuda.h"

namespace advcl::cuda_ops {

namespace {

constexpr int kRowsPerBlock = cuda::kThreads / cuda::kWarp;

// Every lane of the warp gets the combination of the 32 lanes' values.
__device__ double warp_all_sum(double v) {
  for (int offset = cuda::kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ double warp_all_max(double v) {
  for (int offset = cuda::kWarp / 2; offset > 0; offset /= 2) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// log(sum(exp(x))) of the warp's row.
template <class T>
__device__ double warp_log_sum_exp(const T* x, int64_t C, int lane) {
  double m = warp_all_max(kernels::row_max_part(x, C, lane, cuda::kWarp));
  return m + log(warp_all_sum(kernels::row_sum_exp_part(x, C, m, lane, cuda::kWarp)));
}

// Calls f(row, lane) for every row, a warp per row (the row is the same for
// the whole warp, so the shuffles inside f see all 32 lanes).
template <class F>
__global__ void warp_per_row_kernel(int64_t rows, F f) {
  const int lane = threadIdx.x % cuda::kWarp;
  const int64_t step = static_cast<int64_t>(gridDim.x) * kRowsPerBlock;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / cuda::kWarp; r < rows; r += step)
    f(r, lane);
}

template <class F>
void launch_rows(const char* op, int64_t rows, const F& f) {
  if (rows <= 0) return;
  int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  warp_per_row_kernel<<<static_cast<unsigned>(blocks < cuda::kMaxBlocks ? blocks : cuda::kMaxBlocks), cuda::kThreads,
                        0, cuda::stream()>>>(rows, f);
  ADVCL_CUDA_CHECK_LAUNCH(op, "warp_per_row_kernel");
}

template <class T>
struct SoftmaxRow {
  const T* x;
  T* y;
  int64_t C;
  int kind;
  __device__ void operator()(int64_t r, int lane) const {
    const T* xr = x + r * C;
    kernels::softmax_write_part(xr, y + r * C, C, warp_log_sum_exp(xr, C, lane), kind, lane, cuda::kWarp);
  }
};

template <class T>
struct SoftmaxBackwardRow {
  const T *y, *g;
  T* gx;
  int64_t C;
  int kind;
  __device__ void operator()(int64_t r, int lane) const {
    const T *yr = y + r * C, *gr = g + r * C;
    // softmax: sum(g * y); log_softmax: sum(g)
    double s = warp_all_sum(kernels::row_dot_part(gr, kind == 0 ? yr : nullptr, C, lane, cuda::kWarp));
    kernels::softmax_backward_write_part(yr, gr, gx + r * C, C, s, kind, lane, cuda::kWarp);
  }
};

template <class T>
struct CrossEntropyRow {
  const T* x;
  const int64_t* labels;
  T* loss;
  int64_t C, ignore_index;
  __device__ void operator()(int64_t r, int lane) const {
    const T* xr = x + r * C;
    const int64_t label = labels[r];
    if (label == ignore_index) {  // the same for the whole warp
      if (lane == 0) loss[r] = T(0);
      return;
    }
    if (label < 0 || label >= C) {
      if (lane == 0) loss[r] = static_cast<T>(NAN);
      return;
    }
    double lse = warp_log_sum_exp(xr, C, lane);
    if (lane == 0) loss[r] = static_cast<T>(lse - static_cast<double>(xr[label]));
  }
};

template <class T>
struct CrossEntropyBackwardRow {
  const T* x;
  const int64_t* labels;
  T* gx;
  int64_t C, ignore_index;
  double scale;
  __device__ void operator()(int64_t r, int lane) const {
    const T* xr = x + r * C;
    T* out = gx + r * C;
    const int64_t label = labels[r];
    if (label == ignore_index || label < 0 || label >= C) {
      const T fill = label == ignore_index ? T(0) : static_cast<T>(NAN);
      for (int64_t c = lane; c < C; c += cuda::kWarp) out[c] = fill;
      return;
    }
    kernels::cross_entropy_backward_part(xr, out, C, label, warp_log_sum_exp(xr, C, lane), scale, lane, cuda::kWarp);
  }
};

template <class T>
struct KlTerms {
  const T *input, *target;
  T* out;
  __device__ void operator()(int64_t i) const { out[i] = static_cast<T>(kernels::kl_elem(input[i], target[i])); }
};

template <class T>
struct KlBackward {
  const T *input, *target;
  T *g_input, *g_target;
  double scale;
  __device__ void operator()(int64_t i) const {
    if (g_input) g_input[i] = static_cast<T>(kernels::kl_d_input(input[i], target[i]) * scale);
    if (g_target) g_target[i] = static_cast<T>(kernels::kl_d_target(input[i], target[i]) * scale);
  }
};

}  // namespace

// Labels are validated where they enter (see ops::cross_entropy); one out of
// range gives a NaN loss and gradient here, never a read outside the row.
template <class T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t C, int kind) {
  launch_rows("softmax", C > 0 ? rows : 0, SoftmaxRow<T>{x, y, C, kind});
}
template <class T>
void softmax_backward_rows(const T* y, const T* g, T* gx, int64_t rows, int64_t C, int kind) {
  launch_rows("softmax backward", C > 0 ? rows : 0, SoftmaxBackwardRow<T>{y, g, gx, C, kind});
}
template <class T>
void cross_entropy_rows(const T* x, const int64_t* labels, T* loss, int64_t rows, int64_t C, int64_t ignore_index) {
  launch_rows("cross_entropy", rows, CrossEntropyRow<T>{x, labels, loss, C, ignore_index});
}
template <class T>
void cross_entropy_backward_rows(const T* x, const int64_t* labels, T* gx, int64_t rows, int64_t C,
                                 int64_t ignore_index, double g_scale) {
  launch_rows("cross_entropy backward", rows, CrossEntropyBackwardRow<T>{x, labels, gx, C, ignore_index, g_scale});
}
template <class T>
void kl_terms(const T* input, const T* target, T* out, int64_t n) {
  cuda::launch("kl_div", n, KlTerms<T>{input, target, out});
}
template <class T>
void kl_backward(const T* input, const T* target, T* g_input, T* g_target, int64_t n, double g_scale) {
  cuda::launch("kl_div backward", n, KlBackward<T>{input, target, g_input, g_target, g_scale});
}

#define ADVCL_SOFTMAX(T)                                                                                    \
  template void softmax_rows<T>(const T*, T*, int64_t, int64_t, int);                                       \
  template void softmax_backward_rows<T>(const T*, const T*, T*, int64_t, int64_t, int);                    \
  template void cross_entropy_rows<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t);             \
  template void cross_entropy_backward_rows<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t, double); \
  template void kl_terms<T>(const T*, const T*, T*, int64_t);                                               \
  template void kl_backward<T>(const T*, const T*, T*, T*, int64_t, double);
ADVCL_SOFTMAX(float)
ADVCL_SOFTMAX(double)

}  // namespace advcl::cuda_ops
