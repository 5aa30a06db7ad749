// CUDA side of the random fills (engine/ops/random_cuda.h): the same
// kernels::RandomFill per element as the CPU loop, so a tensor drawn on the
// GPU holds the CPU's numbers: bit for bit for uniform [0, 1), bernoulli and
// integers; to the last bit for other uniform ranges (nvcc fuses
// lo + (hi - lo) * u into one FMA, g++ for x86-64 rounds twice) and normals
// (CUDA's log/cos may differ from libm's in the last bit).
#include "cuda/launch.cuh"
#include "engine/ops/random_cuda.h"

namespace advcl::cuda_ops {

namespace {
template <class T>
struct Fill {
  kernels::RandomFill f;
  T* out;
  __device__ void operator()(int64_t i) const { out[i] = static_cast<T>(f(i)); }
};
}  // namespace

template <class T>
void random_fill(const kernels::RandomFill& f, T* out, int64_t n) {
  cuda::launch("random", n, Fill<T>{f, out});
}

template void random_fill<float>(const kernels::RandomFill&, float*, int64_t);
template void random_fill<double>(const kernels::RandomFill&, double*, int64_t);
template void random_fill<int64_t>(const kernels::RandomFill&, int64_t*, int64_t);

}  // namespace advcl::cuda_ops
