// CUDA side of conv2d (engine/ops/conv2d_cuda.h) through cuDNN's
// convolution API. For each geometry (and dtype, device and settings) the
// descriptors and the algorithm of each direction are chosen once and
// cached. The algorithm comes from cuDNN's heuristics (no benchmarking, so
// the choice is itself deterministic); in deterministic mode
// (cuda/settings.h) only CUDNN_DETERMINISTIC algorithms are taken. Bias and
// its gradient are our own kernels (the latter a fixed-order block sum).
#include <map>
#include <mutex>
#include <tuple>

#include "cuda/block_reduce.cuh"
#include "cuda/device_buffer.cuh"
#include "cuda/handles.cuh"
#include "cuda/settings.h"
#include "engine/ops/conv2d_cuda.h"

namespace advcl::cuda_ops {

using kernels::ConvGeometry;

namespace {

// Algorithms needing more workspace than this are passed over.
constexpr size_t kMaxWorkspace = size_t(2) << 30;

template <class T> constexpr cudnnDataType_t cudnn_type();
template <> constexpr cudnnDataType_t cudnn_type<float>() { return CUDNN_DATA_FLOAT; }
template <> constexpr cudnnDataType_t cudnn_type<double>() { return CUDNN_DATA_DOUBLE; }

int to_int(int64_t v) {
  if (v < 0 || v > 2147483647) fail("conv2d: size ", v, " does not fit cuDNN's 32-bit sizes");
  return static_cast<int>(v);
}

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool have_fwd = false, have_data = false, have_filter = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t data{};
  cudnnConvolutionBwdFilterAlgo_t filter{};
  size_t fwd_ws = 0, data_ws = 0, filter_ws = 0;
};

using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                           bool, bool, int>;

std::mutex g_mu;
std::map<PlanKey, ConvPlan*> g_plans;  // never freed: descriptors are tiny and reused for the whole run

template <class T>
ConvPlan* make_plan(const ConvGeometry& g, bool tf32) {
  auto* p = new ConvPlan;
  const cudnnDataType_t dt = cudnn_type<T>();
  ADVCL_CUDNN_CHECK("conv2d", cudnnCreateTensorDescriptor(&p->x));
  ADVCL_CUDNN_CHECK("conv2d", cudnnCreateTensorDescriptor(&p->y));
  ADVCL_CUDNN_CHECK("conv2d", cudnnCreateFilterDescriptor(&p->w));
  ADVCL_CUDNN_CHECK("conv2d", cudnnCreateConvolutionDescriptor(&p->conv));
  ADVCL_CUDNN_CHECK("conv2d", cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, dt, to_int(g.N), to_int(g.Cin),
                                                         to_int(g.H), to_int(g.W)));
  ADVCL_CUDNN_CHECK("conv2d", cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NCHW, to_int(g.Cout), to_int(g.Cin),
                                                         to_int(g.kH), to_int(g.kW)));
  ADVCL_CUDNN_CHECK("conv2d", cudnnSetConvolution2dDescriptor(p->conv, to_int(g.pad), to_int(g.pad),
                                                              to_int(g.stride), to_int(g.stride), 1, 1,
                                                              CUDNN_CROSS_CORRELATION, dt));
  // Float without TF32 must use plain FMA math; cuDNN's default would allow TF32.
  cudnnMathType_t math = dt == CUDNN_DATA_FLOAT && !tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  ADVCL_CUDNN_CHECK("conv2d", cudnnSetConvolutionMathType(p->conv, math));
  int n, c, h, w;
  ADVCL_CUDNN_CHECK("conv2d", cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w));
  if (n != g.N || c != g.Cout || h != g.OH || w != g.OW)
    fail("conv2d: cuDNN computes output [", n, ", ", c, ", ", h, ", ", w, "] but advcl expects [", g.N, ", ", g.Cout,
         ", ", g.OH, ", ", g.OW, "]");
  ADVCL_CUDNN_CHECK("conv2d", cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, dt, n, c, h, w));
  return p;
}

// The plan for this geometry; the caller holds g_mu while using it.
template <class T>
ConvPlan& plan_for(const ConvGeometry& g) {
  int device = 0;
  ADVCL_CUDA_CHECK("conv2d", cudaGetDevice(&device));
  bool det = cuda::deterministic(), tf32 = cuda::allow_tf32();
  PlanKey key{g.N, g.Cin, g.H, g.W, g.Cout, g.kH, g.kW, g.stride, g.pad, static_cast<int>(cudnn_type<T>()),
              det, tf32, device};
  ConvPlan*& p = g_plans[key];
  if (!p) p = make_plan<T>(g, tf32);
  return *p;
}

// The first usable algorithm in cuDNN's heuristic order.
template <class Perf>
const Perf& choose(const char* what, const Perf* perfs, int count) {
  bool det = cuda::deterministic();
  for (int i = 0; i < count; ++i) {
    if (perfs[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (det && perfs[i].determinism != CUDNN_DETERMINISTIC) continue;
    if (perfs[i].memory > kMaxWorkspace) continue;
    return perfs[i];
  }
  fail("conv2d: cuDNN offers no ", det ? "deterministic " : "", what,
       " algorithm for this geometry", det ? " (try cuda::set_deterministic(false))" : "");
}

template <class T>
struct AddBias {
  T* y;
  const T* bias;
  int64_t C, P;
  __device__ void operator()(int64_t i) const { y[i] += bias[(i / P) % C]; }
};

// gb[co] = sum over n, p of gy[n, co, p], one block per channel, in double.
template <class T>
__global__ void bias_grad_kernel(const T* gy, T* gb, int64_t N, int64_t C, int64_t P) {
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double acc = 0;
    for (int64_t i = threadIdx.x; i < N * P; i += blockDim.x) acc += static_cast<double>(gy[((i / P) * C + c) * P + i % P]);
    acc = cuda::block_sum(acc);
    if (threadIdx.x == 0) gb[c] = static_cast<T>(acc);
  }
}

}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
  if (g.N == 0 || g.Cout == 0 || g.OH * g.OW == 0) return;
  cudnnHandle_t h = cuda::cudnn_handle();
  {
    std::lock_guard<std::mutex> lock(g_mu);
    ConvPlan& p = plan_for<T>(g);
    if (!p.have_fwd) {
      cudnnConvolutionFwdAlgoPerf_t perfs[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      int count = 0;
      ADVCL_CUDNN_CHECK("conv2d", cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y,
                                                                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count,
                                                                         perfs));
      p.fwd = choose("forward", perfs, count).algo;
      ADVCL_CUDNN_CHECK("conv2d", cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, p.fwd, &p.fwd_ws));
      p.have_fwd = true;
    }
    cuda::DeviceBuffer ws("conv2d", p.fwd_ws);
    const T one = 1, zero = 0;
    ADVCL_CUDNN_CHECK("conv2d", cudnnConvolutionForward(h, &one, p.x, x, p.w, w, p.conv, p.fwd, ws.get(), p.fwd_ws,
                                                        &zero, p.y, y));
  }
  if (bias) cuda::launch("conv2d bias", g.N * g.Cout * g.OH * g.OW, AddBias<T>{y, bias, g.Cout, g.OH * g.OW});
}

template <class T>
void conv2d_backward_data(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
  if (g.N == 0 || g.Cin * g.H * g.W == 0) return;
  if (g.Cout == 0 || g.OH * g.OW == 0) {  // nothing flows back: the gradient is zero
    ADVCL_CUDA_CHECK("conv2d backward", cudaMemsetAsync(gx, 0, sizeof(T) * g.N * g.Cin * g.H * g.W, cuda::stream()));
    return;
  }
  cudnnHandle_t h = cuda::cudnn_handle();
  std::lock_guard<std::mutex> lock(g_mu);
  ConvPlan& p = plan_for<T>(g);
  if (!p.have_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int count = 0;
    ADVCL_CUDNN_CHECK("conv2d backward", cudnnGetConvolutionBackwardDataAlgorithm_v7(
                                             h, p.w, p.y, p.conv, p.x, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count,
                                             perfs));
    p.data = choose("backward-data", perfs, count).algo;
    ADVCL_CUDNN_CHECK("conv2d backward",
                      cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, p.data, &p.data_ws));
    p.have_data = true;
  }
  cuda::DeviceBuffer ws("conv2d backward", p.data_ws);
  const T one = 1, zero = 0;
  ADVCL_CUDNN_CHECK("conv2d backward", cudnnConvolutionBackwardData(h, &one, p.w, w, p.y, gy, p.conv, p.data,
                                                                    ws.get(), p.data_ws, &zero, p.x, gx));
}

template <class T>
void conv2d_backward_weight(const ConvGeometry& g, const T* gy, const T* x, T* gw) {
  if (g.Cout * g.K() == 0) return;
  if (g.N == 0 || g.OH * g.OW == 0) {  // an empty batch: the gradient is zero, as on the CPU
    ADVCL_CUDA_CHECK("conv2d backward", cudaMemsetAsync(gw, 0, sizeof(T) * g.Cout * g.K(), cuda::stream()));
    return;
  }
  cudnnHandle_t h = cuda::cudnn_handle();
  std::lock_guard<std::mutex> lock(g_mu);
  ConvPlan& p = plan_for<T>(g);
  if (!p.have_filter) {
    cudnnConvolutionBwdFilterAlgoPerf_t perfs[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int count = 0;
    ADVCL_CUDNN_CHECK("conv2d backward", cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                                             h, p.x, p.y, p.conv, p.w, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                             &count, perfs));
    p.filter = choose("backward-weight", perfs, count).algo;
    ADVCL_CUDNN_CHECK("conv2d backward", cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w,
                                                                                       p.filter, &p.filter_ws));
    p.have_filter = true;
  }
  cuda::DeviceBuffer ws("conv2d backward", p.filter_ws);
  const T one = 1, zero = 0;
  ADVCL_CUDNN_CHECK("conv2d backward", cudnnConvolutionBackwardFilter(h, &one, p.x, x, p.y, gy, p.conv, p.filter,
                                                                      ws.get(), p.filter_ws, &zero, p.w, gw));
}

template <class T>
void conv2d_backward_bias(const ConvGeometry& g, const T* gy, T* gb) {
  if (g.Cout == 0) return;
  bias_grad_kernel<T><<<cuda::blocks_per_item(g.Cout), cuda::kThreads, 0, cuda::stream()>>>(gy, gb, g.N, g.Cout,
                                                                                            g.OH * g.OW);
  ADVCL_CUDA_CHECK_LAUNCH("conv2d backward", "bias_grad_kernel");
}

#define ADVCL_CONV(T)                                                                         \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*);     \
  template void conv2d_backward_data<T>(const ConvGeometry&, const T*, const T*, T*);         \
  template void conv2d_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*);       \
  template void conv2d_backward_bias<T>(const ConvGeometry&, const T*, T*);
ADVCL_CONV(float)
ADVCL_CONV(double)

}  // namespace advcl::cuda_ops
