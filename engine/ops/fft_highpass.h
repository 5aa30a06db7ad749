// The high-frequency view of AdvCL (docs/method.md section 8): per image and channel,
//   Re( IFFT2( ishift( M * shift( FFT2(x) ) ) ) )
// where M zeroes every frequency within distance < radius of the centre
// (H/2, W/2) of the shifted spectrum. The map is linear and real; since the
// mask is symmetric, it is self-adjoint, so its backward is itself.
//
// CPU: exact, as x minus the low-pass part, and the low-pass part needs only
// the few frequency rows and columns the mask touches (small DFT products in
// double precision). GPU: cuFFT.
#pragma once
#include "engine/tensor.h"

namespace advcl::ops {

Tensor fft_highpass(const Tensor& x, double radius);

// The mask in shifted coordinates (1 = kept, 0 = zeroed), [H, W] uint8; for tests and docs.
Tensor highpass_mask(int64_t h, int64_t w, double radius);

}  // namespace advcl::ops
