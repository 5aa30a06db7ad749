// CUDA side of conv2d (engine/ops/conv2d_cuda.h) through cuDNN's
// convolution API. For each geometry (and dtype, device and settings) the
// descriptors and the algorithm of each direction are chosen once and
// cached. The algorithm is measured (cudnnFind*AlgorithmEx, on the call's
// own buffers, with a workspace from the caching allocator): the fastest
// that cuDNN accepts at run time is kept. In deterministic mode
// (cuda/settings.h) only CUDNN_DETERMINISTIC algorithms are taken; if cuDNN
// has none for a geometry (it lists none for some float64 directions), the
// fastest other one runs, with a one-time warning, rather than the op
// failing. A measured choice is fixed for the process: reruns give the same
// bits; another process measures again and may settle on another algorithm.
// Bias and its gradient are our own kernels (the latter a fixed-order block
// sum).
#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/block_reduce.cuh"
#include "cuda/device_buffer.cuh"
#include "cuda/handles.cuh"
#include "cuda/settings.h"
#include "engine/ops/conv2d_algorithms.h"
#include "engine/ops/conv2d_cuda.h"

namespace advcl::cuda_ops {

using kernels::ConvGeometry;

namespace {

// Algorithms needing more workspace than this are passed over.
constexpr size_t kMaxWorkspace = size_t(2) << 30;

template <class T> constexpr cudnnDataType_t cudnn_type();
template <> constexpr cudnnDataType_t cudnn_type<float>() { return CUDNN_DATA_FLOAT; }
template <> constexpr cudnnDataType_t cudnn_type<double>() { return CUDNN_DATA_DOUBLE; }
template <class T> constexpr const char* dtype_str() { return sizeof(T) == 4 ? "float32" : "float64"; }

int to_int(int64_t v) {
  if (v < 0 || v > 2147483647) fail("conv2d: size ", v, " does not fit cuDNN's 32-bit sizes");
  return static_cast<int>(v);
}

// One direction's algorithm and workspace size, chosen on its first call.
template <class Algo>
struct Chosen {
  bool done = false;
  Algo algo{};
  size_t workspace = 0;
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Chosen<cudnnConvolutionFwdAlgo_t> fwd;
  Chosen<cudnnConvolutionBwdDataAlgo_t> data;
  Chosen<cudnnConvolutionBwdFilterAlgo_t> filter;
};

using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                           bool, bool, int>;

std::mutex g_mu;
std::map<PlanKey, ConvPlan*> g_plans;  // never freed: descriptors are tiny and reused for the whole run
std::set<std::string> g_warned;        // directions already warned about (under g_mu)

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
  // Float32 with TF32 (cuda/settings.h): cuDNN's default math, which allows
  // TF32 tensor cores on Ampere and newer. Without it, plain FMA math, which
  // excludes them. Float64 has no tensor-core variant to exclude.
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
  int device = cuda::current_device();
  bool det = cuda::deterministic(), tf32 = cuda::allow_tf32();
  PlanKey key{g.N, g.Cin, g.H, g.W, g.Cout, g.kH, g.kW, g.stride, g.pad, static_cast<int>(cudnn_type<T>()),
              det, tf32, device};
  ConvPlan*& p = g_plans[key];
  if (!p) p = make_plan<T>(g, tf32);
  return *p;
}

// Runs one direction of the convolution with its chosen algorithm; on the
// first call, chooses it. `find(perfs, &count, ws, bytes)` measures every
// algorithm (fastest first) with a workspace of `bytes`, sized by asking
// `workspace(algo, &bytes)` of every algorithm (those needing more than
// kMaxWorkspace are left out); `heuristic(perfs, &count)` lists cuDNN's
// guesses, tried after the measured ones in case measuring failed. The first
// candidate whose workspace query and run (`run(algo, ws, bytes)`) succeed is
// kept: deterministic ones first in deterministic mode, then any other, with
// a warning. A candidate refused with a NOT_SUPPORTED status is passed over
// (the lists can hold an algorithm that then declines the geometry or the
// dtype, double notably), and the CUDA error such a refusal can leave behind
// is cleared, or the next launch check would report it as its own. Any other
// failure is an error.
template <class Perf, int kMaxAlgos, class Algo, class Heuristic, class Find, class Workspace, class Run>
void run_conv(const char* op, const char* what, const char* dtype, Chosen<Algo>& chosen, Heuristic heuristic,
              Find find, Workspace workspace, Run run) {
  if (chosen.done) {
    cuda::DeviceBuffer ws(op, chosen.workspace);
    ADVCL_CUDNN_CHECK(op, run(chosen.algo, ws.get(), chosen.workspace));
    return;
  }
  const bool det = cuda::deterministic();
  auto perf = [](const Perf& p) {
    return AlgoPerf{static_cast<int>(p.algo), p.status == CUDNN_STATUS_SUCCESS, p.determinism == CUDNN_DETERMINISTIC,
                    p.memory};
  };

  // Measure, with one workspace as large as the largest algorithm within bounds.
  size_t budget = 0;
  for (int a = 0; a < kMaxAlgos; ++a) {
    size_t bytes = 0;
    if (workspace(static_cast<Algo>(a), &bytes) == CUDNN_STATUS_SUCCESS && bytes <= kMaxWorkspace)
      budget = std::max(budget, bytes);
    cudaGetLastError();
  }
  Perf perfs[kMaxAlgos];
  int count = 0;
  std::vector<AlgoPerf> measured, guessed;
  {
    cuda::DeviceBuffer ws(op, budget);
    cudnnStatus_t st = find(perfs, &count, ws.get(), budget);
    cudaGetLastError();
    if (st != CUDNN_STATUS_SUCCESS) count = 0;  // e.g. out of memory while measuring: the heuristics remain
  }
  for (int i = 0; i < count; ++i) measured.push_back(perf(perfs[i]));
  count = 0;
  ADVCL_CUDNN_CHECK(op, heuristic(perfs, &count));
  for (int i = 0; i < count; ++i) guessed.push_back(perf(perfs[i]));
  const AlgoOrder order = order_algorithms(measured, budget, guessed, kMaxWorkspace, det);

  std::string refused;
  auto try_all = [&](const std::vector<int>& list) {
    for (int i : list) {
      const Algo a = static_cast<Algo>(i);
      size_t bytes = 0;
      cudnnStatus_t st = workspace(a, &bytes);
      if (st == CUDNN_STATUS_SUCCESS) {
        cuda::DeviceBuffer ws(op, bytes);
        st = run(a, ws.get(), bytes);
        if (st == CUDNN_STATUS_SUCCESS) {
          chosen = {true, a, bytes};
          return true;
        }
      }
      if (CUDNN_STATUS_CATEGORY(st) != CUDNN_STATUS_NOT_SUPPORTED)
        fail(op, ": cuDNN ", what, " algorithm ", static_cast<int>(a), " failed: ", cudnnGetErrorString(st));
      cudaGetLastError();
      refused += (refused.empty() ? "" : ", ") + std::to_string(static_cast<int>(a));
    }
    return false;
  };
  if (try_all(order.preferred)) return;
  if (try_all(order.fallback)) {
    std::string key = std::string(what) + " " + dtype;
    if (g_warned.insert(key).second)
      std::fprintf(stderr,
                   "warning: %s: cuDNN has no deterministic %s %s algorithm for a geometry of this run; using "
                   "algorithm %d, whose results may differ in the last bits from run to run\n",
                   op, dtype, what, static_cast<int>(chosen.algo));
    return;
  }
  fail(op, ": cuDNN offers no ", what, " algorithm for this ", dtype, " geometry",
       refused.empty() ? "" : " (refused at run time: algorithms " + refused + ")");
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
    const T one = 1, zero = 0;
    run_conv<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
        "conv2d", "forward", dtype_str<T>(), p.fwd,
        [&](cudnnConvolutionFwdAlgoPerf_t* perfs, int* count) {
          return cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                        count, perfs);
        },
        [&](cudnnConvolutionFwdAlgoPerf_t* perfs, int* count, void* ws, size_t bytes) {
          return cudnnFindConvolutionForwardAlgorithmEx(h, p.x, x, p.w, w, p.conv, p.y, y,
                                                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, count, perfs, ws, bytes);
        },
        [&](cudnnConvolutionFwdAlgo_t a, size_t* bytes) {
          return cudnnGetConvolutionForwardWorkspaceSize(h, p.x, p.w, p.conv, p.y, a, bytes);
        },
        [&](cudnnConvolutionFwdAlgo_t a, void* ws, size_t bytes) {
          return cudnnConvolutionForward(h, &one, p.x, x, p.w, w, p.conv, a, ws, bytes, &zero, p.y, y);
        });
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
  const T one = 1, zero = 0;
  run_conv<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
      "conv2d backward", "backward-data", dtype_str<T>(), p.data,
      [&](cudnnConvolutionBwdDataAlgoPerf_t* perfs, int* count) {
        return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x,
                                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, count, perfs);
      },
      [&](cudnnConvolutionBwdDataAlgoPerf_t* perfs, int* count, void* ws, size_t bytes) {
        return cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, w, p.y, gy, p.conv, p.x, gx,
                                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, count, perfs, ws,
                                                           bytes);
      },
      [&](cudnnConvolutionBwdDataAlgo_t a, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w, p.y, p.conv, p.x, a, bytes);
      },
      [&](cudnnConvolutionBwdDataAlgo_t a, void* ws, size_t bytes) {
        return cudnnConvolutionBackwardData(h, &one, p.w, w, p.y, gy, p.conv, a, ws, bytes, &zero, p.x, gx);
      });
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
  const T one = 1, zero = 0;
  run_conv<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
      "conv2d backward", "backward-weight", dtype_str<T>(), p.filter,
      [&](cudnnConvolutionBwdFilterAlgoPerf_t* perfs, int* count) {
        return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w,
                                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, count, perfs);
      },
      [&](cudnnConvolutionBwdFilterAlgoPerf_t* perfs, int* count, void* ws, size_t bytes) {
        return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x, x, p.y, gy, p.conv, p.w, gw,
                                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, count, perfs,
                                                             ws, bytes);
      },
      [&](cudnnConvolutionBwdFilterAlgo_t a, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x, p.y, p.conv, p.w, a, bytes);
      },
      [&](cudnnConvolutionBwdFilterAlgo_t a, void* ws, size_t bytes) {
        return cudnnConvolutionBackwardFilter(h, &one, p.x, x, p.y, gy, p.conv, a, ws, bytes, &zero, p.w, gw);
      });
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
