// CUDA side of the FFT high-pass (engine/ops/fft_highpass_cuda.h) with
// batched complex cuFFT: y = Re(IFFT2(mask * FFT2(x))) / (H W) per plane,
// the mask read through fftshift. A complex-to-complex transform is used
// (not real-to-complex) because the mask need not be Hermitian-symmetric
// (for even sizes the Nyquist row has no mirror), and the CPU reference
// takes the real part of exactly this product.
#include <map>
#include <mutex>
#include <tuple>

#include "cuda/device_buffer.cuh"
#include "cuda/handles.cuh"
#include "cuda/launch.cuh"
#include "engine/ops/fft_highpass_cuda.h"

namespace advcl::cuda_ops {

namespace {

template <class T> struct Complex;
template <> struct Complex<float> {
  using type = cufftComplex;
  static constexpr cufftType kind = CUFFT_C2C;
  static cufftResult exec(cufftHandle p, type* d, int dir) { return cufftExecC2C(p, d, d, dir); }
};
template <> struct Complex<double> {
  using type = cufftDoubleComplex;
  static constexpr cufftType kind = CUFFT_Z2Z;
  static cufftResult exec(cufftHandle p, type* d, int dir) { return cufftExecZ2Z(p, d, d, dir); }
};

struct Plan {
  cufftHandle handle = 0;
  size_t work = 0;  // bytes of work area, supplied from the caching allocator
};

using PlanKey = std::tuple<int64_t, int64_t, int64_t, int, int>;  // planes, H, W, type, device
std::mutex g_mu;                // plans are not safe to run from two threads at once
std::map<PlanKey, Plan> g_plans;  // kept for the whole run: the same geometry recurs every batch

Plan& plan_for(int64_t planes, int64_t H, int64_t W, cufftType type) {
  int device = 0;
  ADVCL_CUDA_CHECK("fft_highpass", cudaGetDevice(&device));
  Plan& p = g_plans[PlanKey{planes, H, W, static_cast<int>(type), device}];
  if (!p.handle) {
    if (H > 2147483647 || W > 2147483647 || planes > 2147483647 || H * W > 2147483647)
      fail("fft_highpass: sizes ", planes, " x ", H, " x ", W, " do not fit cuFFT's 32-bit sizes");
    cufftHandle h;
    ADVCL_CUFFT_CHECK("fft_highpass", cufftCreate(&h));
    // Work area from our allocator rather than a private cudaMalloc per plan.
    ADVCL_CUFFT_CHECK("fft_highpass", cufftSetAutoAllocation(h, 0));
    int n[2] = {static_cast<int>(H), static_cast<int>(W)};
    int dist = static_cast<int>(H * W);
    ADVCL_CUFFT_CHECK("fft_highpass", cufftMakePlanMany(h, 2, n, nullptr, 1, dist, nullptr, 1, dist, type,
                                                        static_cast<int>(planes), &p.work));
    p.handle = h;
  }
  return p;
}

template <class T>
struct ToComplex {
  const T* x;
  typename Complex<T>::type* buf;
  __device__ void operator()(int64_t i) const {
    buf[i].x = x[i];
    buf[i].y = 0;
  }
};

// Zeroes frequency (u, v) where the shifted mask says so: fftshift puts u at
// row (u + H/2) mod H (kernels/fft_highpass.h).
template <class T>
struct ApplyMask {
  typename Complex<T>::type* buf;
  const uint8_t* keep;
  int64_t H, W;
  __device__ void operator()(int64_t i) const {
    int64_t v = i % W, u = (i / W) % H;
    if (!keep[((u + H / 2) % H) * W + (v + W / 2) % W]) {
      buf[i].x = 0;
      buf[i].y = 0;
    }
  }
};

template <class T>
struct RealPart {
  const typename Complex<T>::type* buf;
  T* y;
  T scale;
  __device__ void operator()(int64_t i) const { y[i] = buf[i].x * scale; }
};

}  // namespace

template <class T>
void fft_highpass(const T* x, T* y, int64_t planes, int64_t H, int64_t W, const uint8_t* keep) {
  int64_t n = planes * H * W;
  if (n == 0) return;
  using C = typename Complex<T>::type;
  cuda::DeviceBuffer buf("fft_highpass", sizeof(C) * n);
  C* b = buf.as<C>();
  cuda::launch("fft_highpass", n, ToComplex<T>{x, b});
  {
    std::lock_guard<std::mutex> lock(g_mu);
    Plan& p = plan_for(planes, H, W, Complex<T>::kind);
    cuda::DeviceBuffer work("fft_highpass", p.work);
    ADVCL_CUFFT_CHECK("fft_highpass", cufftSetWorkArea(p.handle, work.get()));
    ADVCL_CUFFT_CHECK("fft_highpass", cufftSetStream(p.handle, cuda::stream()));
    ADVCL_CUFFT_CHECK("fft_highpass", Complex<T>::exec(p.handle, b, CUFFT_FORWARD));
    cuda::launch("fft_highpass", n, ApplyMask<T>{b, keep, H, W});
    ADVCL_CUFFT_CHECK("fft_highpass", Complex<T>::exec(p.handle, b, CUFFT_INVERSE));
  }
  // cuFFT's inverse is unnormalised.
  cuda::launch("fft_highpass", n, RealPart<T>{b, y, static_cast<T>(1.0 / static_cast<double>(H * W))});
}

template void fft_highpass<float>(const float*, float*, int64_t, int64_t, int64_t, const uint8_t*);
template void fft_highpass<double>(const double*, double*, int64_t, int64_t, int64_t, const uint8_t*);

}  // namespace advcl::cuda_ops
