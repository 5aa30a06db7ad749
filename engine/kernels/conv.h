// The index math of convolution as im2col + GEMM, shared by the CPU path
// (and by any GPU fallback). A chunk of `nb` images starting at image n0 is
// unfolded into col[K, nb * P] with K = Cin*kH*kW rows, one per filter tap,
// and P = OH*OW columns per image:
//   col[(c*kH + kh)*kW + kw, n*P + oh*OW + ow] = x[n0+n, c, oh*s - pad + kh, ow*s - pad + kw]  (0 outside)
// Then out = W[Cout, K] @ col, and the backward passes are GEMMs with the
// transposes plus col2im, written here in gather form (each input element
// sums the columns that read it), so it needs no atomics.
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

// Value of col element `idx` (row-major over [K, nb*P]) for images n0..n0+nb-1.
template <class T>
ADVCL_HD T im2col_elem(const T* x, const ConvGeometry& g, int64_t n0, int64_t nb, int64_t idx) {
  int64_t cols = nb * g.P();
  int64_t k = idx / cols, j = idx % cols;
  int64_t n = j / g.P(), p = j % g.P();
  int64_t oh = p / g.OW, ow = p % g.OW;
  int64_t kw = k % g.kW, kh = (k / g.kW) % g.kH, c = k / (g.kW * g.kH);
  int64_t ih = oh * g.stride - g.pad + kh, iw = ow * g.stride - g.pad + kw;
  if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) return T(0);
  return x[(((n0 + n) * g.Cin + c) * g.H + ih) * g.W + iw];
}

// Gradient of input element `idx` (row-major over the chunk's [nb, Cin, H, W])
// from the column gradient colg[K, nb*P].
template <class T>
ADVCL_HD T col2im_elem(const T* colg, const ConvGeometry& g, int64_t nb, int64_t idx) {
  int64_t iw = idx % g.W, ih = (idx / g.W) % g.H, c = (idx / (g.W * g.H)) % g.Cin, n = idx / (g.W * g.H * g.Cin);
  int64_t cols = nb * g.P();
  T acc = T(0);
  for (int64_t kh = 0; kh < g.kH; ++kh) {
    int64_t th = ih + g.pad - kh;  // = oh * stride
    if (th < 0 || th % g.stride) continue;
    int64_t oh = th / g.stride;
    if (oh >= g.OH) continue;
    for (int64_t kw = 0; kw < g.kW; ++kw) {
      int64_t tw = iw + g.pad - kw;
      if (tw < 0 || tw % g.stride) continue;
      int64_t ow = tw / g.stride;
      if (ow >= g.OW) continue;
      int64_t k = (c * g.kH + kh) * g.kW + kw;
      acc += colg[k * cols + n * g.P() + oh * g.OW + ow];
    }
  }
  return acc;
}

}  // namespace advcl::kernels
