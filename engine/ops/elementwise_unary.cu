// CUDA side of the unary elementwise ops (engine/ops/elementwise_cuda.h): one
// grid-stride launch per call, running the same functor as the CPU loop.
// (Binary ops and sum_to: engine/ops/elementwise.cu.)
#include "cuda/launch.cuh"
#include "engine/kernels/elementwise.h"
#include "engine/ops/elementwise_cuda.h"

namespace advcl::cuda_ops {

namespace {

template <class Op, class T>
struct UnaryFwd {
  Op op;
  const T* x;
  T* y;
  __device__ void operator()(int64_t i) const { y[i] = op.fwd(x[i]); }
};

template <class Op, class T>
struct UnaryBwd {
  Op op;
  const T *x, *y, *g;
  T* gx;
  __device__ void operator()(int64_t i) const { gx[i] = op.bwd(x[i], y[i], g[i]); }
};

}  // namespace

template <class Op, class T>
void unary_forward(const Op& op, const T* x, T* y, int64_t n) {
  cuda::launch("elementwise unary forward", n, UnaryFwd<Op, T>{op, x, y});
}

template <class Op, class T>
void unary_backward(const Op& op, const T* x, const T* y, const T* g, T* gx, int64_t n) {
  cuda::launch("elementwise unary backward", n, UnaryBwd<Op, T>{op, x, y, g, gx});
}

#define ADVCL_UNARY(Op, T)                                                                   \
  template void unary_forward<kernels::Op, T>(const kernels::Op&, const T*, T*, int64_t); \
  template void unary_backward<kernels::Op, T>(const kernels::Op&, const T*, const T*, const T*, T*, int64_t);
#define ADVCL_UNARY_FD(Op) ADVCL_UNARY(Op, float) ADVCL_UNARY(Op, double)

ADVCL_UNARY_FD(Neg)
ADVCL_UNARY_FD(Exp)
ADVCL_UNARY_FD(Log)
ADVCL_UNARY_FD(Sqrt)
ADVCL_UNARY_FD(Abs)
ADVCL_UNARY_FD(Sign)
ADVCL_UNARY_FD(Relu)
ADVCL_UNARY_FD(Clamp)
ADVCL_UNARY_FD(AddScalar)
ADVCL_UNARY_FD(MulScalar)
ADVCL_UNARY_FD(DivScalar)
ADVCL_UNARY_FD(RSubScalar)
ADVCL_UNARY_FD(PowScalar)

}  // namespace advcl::cuda_ops
