// CUDA entry point of the FFT high-pass (implemented in fft_highpass.cu with
// batched cuFFT): y = Re(IFFT2(ISHIFT(mask * SHIFT(FFT2(x))))) per plane.
// `keep` is the [H, W] shifted-coordinate mask (1 = kept) in device memory.
#pragma once
#include <cstdint>

namespace advcl::cuda_ops {

template <class T>
void fft_highpass(const T* x, T* y, int64_t planes, int64_t H, int64_t W, const uint8_t* keep);

}  // namespace advcl::cuda_ops
