// The index math of convolution as im2col + GEMM, shared by the CPU path
// (and by any GPU fallback). A chunk of `nb` images starting at image n0 is
// unfolded into col[K, nb * P] with K = Cin*kH*kW rows, one per filter tap,
// and P = OH*OW columns per image:
//   col[(c*kH + kh)*kW + kw, n*P + oh*OW + ow] = x[n0+n, c, oh*s - pad + kh, ow*s - pad + kw]  (0 outside)
// Then out = W[Cout, K] @ col, and the backward passes are GEMMs with the
// transposes plus col2im.
#pragma once
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

struct ConvGeometry {
  int64_t N, Cin, H, W;  // input
  int64_t Cout, kH, kW;  // filter
  int64_t stride, pad;
  int64_t OH, OW;  // output
  ADVCL_HD int64_t K() const { return Cin * kH * kW; }
  ADVCL_HD int64_t P() const { return OH * OW; }
};

// Row k of the column matrix (one filter tap (c, kh, kw)) for images
// n0..n0+nb-1: nb*P values, zero where the tap falls into the padding.
// Loops run along contiguous output columns, so there is no per-element
// division.
template <class T>
ADVCL_HD void im2col_row(const T* x, const ConvGeometry& g, int64_t n0, int64_t nb, int64_t k, T* row) {
  int64_t kw = k % g.kW, kh = (k / g.kW) % g.kH, c = k / (g.kW * g.kH);
  for (int64_t n = 0; n < nb; ++n) {
    const T* plane = x + ((n0 + n) * g.Cin + c) * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      T* dst = row + n * g.P() + oh * g.OW;
      int64_t ih = oh * g.stride - g.pad + kh;
      if (ih < 0 || ih >= g.H) {
        for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] = T(0);
        continue;
      }
      const T* src = plane + ih * g.W;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t iw = ow * g.stride - g.pad + kw;
        dst[ow] = (iw >= 0 && iw < g.W) ? src[iw] : T(0);
      }
    }
  }
}

// The input gradient of one (image n, channel c) plane of the chunk, from the
// column gradient colg[K, nb*P]: every tap adds its columns back where it
// read them (col2im). Planes are independent, so they can run in parallel.
template <class T>
ADVCL_HD void col2im_plane(const T* colg, const ConvGeometry& g, int64_t nb, int64_t n, int64_t c, T* plane) {
  for (int64_t i = 0; i < g.H * g.W; ++i) plane[i] = T(0);
  int64_t cols = nb * g.P();
  for (int64_t kh = 0; kh < g.kH; ++kh)
    for (int64_t kw = 0; kw < g.kW; ++kw) {
      const T* row = colg + ((c * g.kH + kh) * g.kW + kw) * cols + n * g.P();
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        int64_t ih = oh * g.stride - g.pad + kh;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          int64_t iw = ow * g.stride - g.pad + kw;
          if (iw >= 0 && iw < g.W) plane[ih * g.W + iw] += row[oh * g.OW + ow];
        }
      }
    }
}

}  // namespace advcl::kernels
