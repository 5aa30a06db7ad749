// CUDA side of softmax, cross-entropy and KL (engine/ops/softmax_cuda.h): one
// thread per row (or element) calling the same kernels/softmax.h functions as
// the CPU loop, so both devices compute the same double-precision formulas.
#include "cuda/launch.cuh"
#include "engine/kernels/softmax.h"
#include "engine/ops/softmax_cuda.h"

namespace advcl::cuda_ops {

namespace {

template <class T>
struct SoftmaxRow {
  const T* x;
  T* y;
  int64_t C;
  int kind;
  __device__ void operator()(int64_t r) const {
    if (kind == 0)
      kernels::softmax_row(x + r * C, y + r * C, C);
    else
      kernels::log_softmax_row(x + r * C, y + r * C, C);
  }
};

template <class T>
struct SoftmaxBackwardRow {
  const T *y, *g;
  T* gx;
  int64_t C;
  int kind;
  __device__ void operator()(int64_t r) const {
    if (kind == 0)
      kernels::softmax_backward_row(y + r * C, g + r * C, gx + r * C, C);
    else
      kernels::log_softmax_backward_row(y + r * C, g + r * C, gx + r * C, C);
  }
};

template <class T>
struct CrossEntropyRow {
  const T* x;
  const int64_t* labels;
  T* loss;
  int64_t C, ignore_index;
  __device__ void operator()(int64_t r) const {
    loss[r] = static_cast<T>(kernels::cross_entropy_row(x + r * C, C, labels[r], ignore_index));
  }
};

template <class T>
struct CrossEntropyBackwardRow {
  const T* x;
  const int64_t* labels;
  T* gx;
  int64_t C, ignore_index;
  double scale;
  __device__ void operator()(int64_t r) const {
    kernels::cross_entropy_backward_row(x + r * C, gx + r * C, C, labels[r], ignore_index, scale);
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

// Labels are validated on the host by the caller (softmax.cpp) before launch.
template <class T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t C, int kind) {
  cuda::launch("softmax", C > 0 ? rows : 0, SoftmaxRow<T>{x, y, C, kind});
}
template <class T>
void softmax_backward_rows(const T* y, const T* g, T* gx, int64_t rows, int64_t C, int kind) {
  cuda::launch("softmax backward", C > 0 ? rows : 0, SoftmaxBackwardRow<T>{y, g, gx, C, kind});
}
template <class T>
void cross_entropy_rows(const T* x, const int64_t* labels, T* loss, int64_t rows, int64_t C, int64_t ignore_index) {
  cuda::launch("cross_entropy", rows, CrossEntropyRow<T>{x, labels, loss, C, ignore_index});
}
template <class T>
void cross_entropy_backward_rows(const T* x, const int64_t* labels, T* gx, int64_t rows, int64_t C,
                                 int64_t ignore_index, double g_scale) {
  cuda::launch("cross_entropy backward", rows, CrossEntropyBackwardRow<T>{x, labels, gx, C, ignore_index, g_scale});
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
