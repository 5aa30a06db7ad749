// CUDA side of conv2d (engine/ops/conv2d_cuda.h) through cuDNN's
// convolution API. For each geometry and precision (and device and
// settings) the descriptors and the algorithm of each direction are chosen
// once and cached. The algorithm is measured (cudnnFind*AlgorithmEx, on the
// call's own buffers, with a workspace from the caching allocator): the
// fastest that cuDNN accepts at run time is kept. In deterministic mode
// (cuda/settings.h) only CUDNN_DETERMINISTIC algorithms are taken; if cuDNN
// has none for a geometry (it lists none for some float64 directions), the
// fastest other one runs, with a one-time warning, rather than the op
// failing. A measured choice is fixed for the process: reruns give the same
// bits; another process measures again and may settle on another algorithm.
// Bias and its gradient are our own kernels (the latter a fixed-order block
// sum).
//
// bf16 (autocast, engine/autocast.h): cuDNN's BFLOAT16 configuration, bf16
// tensor and filter descriptors with a FLOAT convolution descriptor (float32
// compute). The float32 operands are rounded into bf16 copies (scratch from
// the caching allocator, convert.cu's kernel) and the bf16 output is widened
// into the caller's float32 buffer. The configuration has no float32 output,
// so the output is rounded to bf16 on the GPU, where oneDNN on the CPU writes
// float32.
#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "cuda/block_reduce.cuh"
#include "cuda/device_buffer.cuh"
#include "cuda/handles.cuh"
#include "cuda/settings.h"
#include "engine/ops/conv2d_algorithms.h"
#include "engine/ops/conv2d_cuda.h"
#include "engine/ops/convert_cuda.h"

namespace advcl::cuda_ops {

using kernels::ConvGeometry;

namespace {

// Algorithms needing more workspace than this are passed over.
constexpr size_t kMaxWorkspace = size_t(2) << 30;

// cuDNN's types for a precision: the tensors' (and filter's) and the
// convolution's, which is the compute type.
cudnnDataType_t data_type(ConvPrecision p) {
  if (p == ConvPrecision::Float64) return CUDNN_DATA_DOUBLE;
  return p == ConvPrecision::Bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}
cudnnDataType_t compute_type(ConvPrecision p) {
  return p == ConvPrecision::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
}

// The precision of a pass on T tensors outside autocast.
template <class T>
ConvPrecision plain_precision() {
  return conv_precision(std::is_same_v<T, double>, false, cuda::allow_tf32());
}

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
  ConvPrecision precision{};
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  Chosen<cudnnConvolutionFwdAlgo_t> fwd;
  Chosen<cudnnConvolutionBwdDataAlgo_t> data;
  Chosen<cudnnConvolutionBwdFilterAlgo_t> filter;
};

// Geometry, precision (ConvPrecision), deterministic mode, device.
using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                           bool, int>;

std::mutex g_mu;
std::map<PlanKey, ConvPlan*> g_plans;  // never freed: descriptors are tiny and reused for the whole run
std::set<std::string> g_warned;        // directions already warned about (under g_mu)

ConvPlan* make_plan(const ConvGeometry& g, ConvPrecision precision) {
  auto* p = new ConvPlan;
  p->precision = precision;
  const cudnnDataType_t dt = data_type(precision);
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
                                                              CUDNN_CROSS_CORRELATION, compute_type(precision)));
  // Float32 with TF32 (cuda/settings.h): cuDNN's default math, which allows
  // TF32 tensor cores on Ampere and newer. Without it, plain FMA math, which
  // excludes them. bf16 takes the default math too: its tensor cores are
  // what it is for. Float64 has no tensor-core variant to exclude.
  cudnnMathType_t math = precision == ConvPrecision::Float32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  ADVCL_CUDNN_CHECK("conv2d", cudnnSetConvolutionMathType(p->conv, math));
  int n, c, h, w;
  ADVCL_CUDNN_CHECK("conv2d", cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w));
  if (n != g.N || c != g.Cout || h != g.OH || w != g.OW)
    fail("conv2d: cuDNN computes output [", n, ", ", c, ", ", h, ", ", w, "] but advcl expects [", g.N, ", ", g.Cout,
         ", ", g.OH, ", ", g.OW, "]");
  ADVCL_CUDNN_CHECK("conv2d", cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, dt, n, c, h, w));
  return p;
}

// The plan for this geometry and precision; the caller holds g_mu while using it.
ConvPlan& plan_for(const ConvGeometry& g, ConvPrecision precision) {
  int device = cuda::current_device();
  PlanKey key{g.N, g.Cin, g.H, g.W, g.Cout, g.kH, g.kW, g.stride, g.pad, static_cast<int>(precision),
              cuda::deterministic(), device};
  ConvPlan*& p = g_plans[key];
  if (!p) p = make_plan(g, precision);
  return *p;
}

// cuDNN's alpha = 1 and beta = 0, in the plan's compute type (float for
// bf16 too).
struct Blend {
  double d1 = 1, d0 = 0;
  float f1 = 1, f0 = 0;
  const void *one, *zero;
  explicit Blend(ConvPrecision p)
      : one(p == ConvPrecision::Float64 ? static_cast<const void*>(&d1) : &f1),
        zero(p == ConvPrecision::Float64 ? static_cast<const void*>(&d0) : &f0) {}
  Blend(const Blend&) = delete;  // one and zero point into the object
};

// The bf16 copy of a float32 operand, or bf16 room for a result, in scratch
// memory from the caching allocator (returned when the scope ends; stream
// order keeps it alive for the kernels that use it).
class Bf16Scratch {
 public:
  Bf16Scratch(const char* op, int64_t n) : n_(n), buf_(op, sizeof(BFloat16) * static_cast<size_t>(n)) {}
  Bf16Scratch(const char* op, const float* src, int64_t n) : Bf16Scratch(op, n) { to_bf16(src, get(), n); }
  BFloat16* get() const { return buf_.as<BFloat16>(); }
  void widen_to(float* dst) const { from_bf16(get(), dst, n_); }

 private:
  int64_t n_;
  cuda::DeviceBuffer buf_;
};

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

// The three directions on the buffers cuDNN reads and writes (of the plan's
// data type); each holds g_mu while it uses its plan.
void forward_on(const ConvGeometry& g, ConvPrecision precision, const void* x, const void* w, void* y) {
  cudnnHandle_t h = cuda::cudnn_handle();
  std::lock_guard<std::mutex> lock(g_mu);
  ConvPlan& p = plan_for(g, precision);
  const Blend b(precision);
  run_conv<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
      "conv2d", "forward", precision_name(precision), p.fwd,
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
        return cudnnConvolutionForward(h, b.one, p.x, x, p.w, w, p.conv, a, ws, bytes, b.zero, p.y, y);
      });
}

void backward_data_on(const ConvGeometry& g, ConvPrecision precision, const void* gy, const void* w, void* gx) {
  cudnnHandle_t h = cuda::cudnn_handle();
  std::lock_guard<std::mutex> lock(g_mu);
  ConvPlan& p = plan_for(g, precision);
  const Blend b(precision);
  run_conv<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
      "conv2d backward", "backward-data", precision_name(precision), p.data,
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
        return cudnnConvolutionBackwardData(h, b.one, p.w, w, p.y, gy, p.conv, a, ws, bytes, b.zero, p.x, gx);
      });
}

void backward_weight_on(const ConvGeometry& g, ConvPrecision precision, const void* gy, const void* x, void* gw) {
  cudnnHandle_t h = cuda::cudnn_handle();
  std::lock_guard<std::mutex> lock(g_mu);
  ConvPlan& p = plan_for(g, precision);
  const Blend b(precision);
  run_conv<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
      "conv2d backward", "backward-weight", precision_name(precision), p.filter,
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
        return cudnnConvolutionBackwardFilter(h, b.one, p.x, x, p.y, gy, p.conv, a, ws, bytes, b.zero, p.w, gw);
      });
}

// Autocast's passes (float32 tensors): bf16 copies of the operands in, the
// bf16 result (rounded by cuDNN) widened into the float32 output.
void forward_bf16(const ConvGeometry& g, const float* x, const float* w, float* y) {
  Bf16Scratch xb("conv2d", x, g.N * g.Cin * g.H * g.W), wb("conv2d", w, g.Cout * g.K()),
      yb("conv2d", g.N * g.Cout * g.OH * g.OW);
  forward_on(g, ConvPrecision::Bf16, xb.get(), wb.get(), yb.get());
  yb.widen_to(y);
}

void backward_data_bf16(const ConvGeometry& g, const float* gy, const float* w, float* gx) {
  Bf16Scratch gyb("conv2d backward", gy, g.N * g.Cout * g.OH * g.OW), wb("conv2d backward", w, g.Cout * g.K()),
      gxb("conv2d backward", g.N * g.Cin * g.H * g.W);
  backward_data_on(g, ConvPrecision::Bf16, gyb.get(), wb.get(), gxb.get());
  gxb.widen_to(gx);
}

void backward_weight_bf16(const ConvGeometry& g, const float* gy, const float* x, float* gw) {
  Bf16Scratch gyb("conv2d backward", gy, g.N * g.Cout * g.OH * g.OW), xb("conv2d backward", x, g.N * g.Cin * g.H * g.W),
      gwb("conv2d backward", g.Cout * g.K());
  backward_weight_on(g, ConvPrecision::Bf16, gyb.get(), xb.get(), gwb.get());
  gwb.widen_to(gw);
}

// Autocast never touches float64 (engine/autocast.h) and the op layer never
// asks it of this path; were it asked, it must not run float32 silently.
[[noreturn]] void no_float64_bf16() { fail("conv2d: bf16 operands are for float32 tensors only"); }
void forward_bf16(const ConvGeometry&, const double*, const double*, double*) { no_float64_bf16(); }
void backward_data_bf16(const ConvGeometry&, const double*, const double*, double*) { no_float64_bf16(); }
void backward_weight_bf16(const ConvGeometry&, const double*, const double*, double*) { no_float64_bf16(); }

}  // namespace

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, bool bf16) {
  if (g.N == 0 || g.Cout == 0 || g.OH * g.OW == 0) return;
  if (bf16)
    forward_bf16(g, x, w, y);
  else
    forward_on(g, plain_precision<T>(), x, w, y);
  // The bias is added in float32 to the (under bf16: rounded and widened) convolution.
  if (bias) cuda::launch("conv2d bias", g.N * g.Cout * g.OH * g.OW, AddBias<T>{y, bias, g.Cout, g.OH * g.OW});
}

template <class T>
void conv2d_backward_data(const ConvGeometry& g, const T* gy, const T* w, T* gx, bool bf16) {
  if (g.N == 0 || g.Cin * g.H * g.W == 0) return;
  if (g.Cout == 0 || g.OH * g.OW == 0) {  // nothing flows back: the gradient is zero
    ADVCL_CUDA_CHECK("conv2d backward", cudaMemsetAsync(gx, 0, sizeof(T) * g.N * g.Cin * g.H * g.W, cuda::stream()));
    return;
  }
  if (bf16)
    backward_data_bf16(g, gy, w, gx);
  else
    backward_data_on(g, plain_precision<T>(), gy, w, gx);
}

template <class T>
void conv2d_backward_weight(const ConvGeometry& g, const T* gy, const T* x, T* gw, bool bf16) {
  if (g.Cout * g.K() == 0) return;
  if (g.N == 0 || g.OH * g.OW == 0) {  // an empty batch: the gradient is zero, as on the CPU
    ADVCL_CUDA_CHECK("conv2d backward", cudaMemsetAsync(gw, 0, sizeof(T) * g.Cout * g.K(), cuda::stream()));
    return;
  }
  if (bf16)
    backward_weight_bf16(g, gy, x, gw);
  else
    backward_weight_on(g, plain_precision<T>(), gy, x, gw);
}

template <class T>
void conv2d_backward_bias(const ConvGeometry& g, const T* gy, T* gb) {
  if (g.Cout == 0) return;
  bias_grad_kernel<T><<<cuda::blocks_per_item(g.Cout), cuda::kThreads, 0, cuda::stream()>>>(gy, gb, g.N, g.Cout,
                                                                                            g.OH * g.OW);
  ADVCL_CUDA_CHECK_LAUNCH("conv2d backward", "bias_grad_kernel");
}

#define ADVCL_CONV(T)                                                                           \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, bool); \
  template void conv2d_backward_data<T>(const ConvGeometry&, const T*, const T*, T*, bool);     \
  template void conv2d_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*, bool);   \
  template void conv2d_backward_bias<T>(const ConvGeometry&, const T*, T*);
ADVCL_CONV(float)
ADVCL_CONV(double)

}  // namespace advcl::cuda_ops
