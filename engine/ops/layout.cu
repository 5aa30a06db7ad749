// CUDA side of engine/ops/layout.cpp: one thread per output element.
#include "cuda/launch.cuh"
#include "engine/ops/layout_cuda.h"

namespace advcl::cuda_ops {

namespace {

template <class T>
struct Transpose {
  const T* in;
  T* out;
  kernels::BatchedTranspose t;
  __device__ void operator()(int64_t i) const { out[i] = in[t.source_of(i)]; }
};

}  // namespace

template <class T>
void batched_transpose(const T* in, T* out, const kernels::BatchedTranspose& t) {
  cuda::launch("channels_last", t.N * t.A * t.B, Transpose<T>{in, out, t});
}

template void batched_transpose<float>(const float*, float*, const kernels::BatchedTranspose&);
template void batched_transpose<double>(const double*, double*, const kernels::BatchedTranspose&);

}  // namespace advcl::cuda_ops
