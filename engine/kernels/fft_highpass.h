// The high-pass mask of AdvCL's high-frequency view (docs/method.md section 8), in
// the coordinates of the fftshift-ed spectrum: frequency (i, j) is zeroed when
// its distance to the centre (H/2, W/2) (integer division) is below r.
// fftshift puts frequency u at shifted index (u + H/2) mod H, so shifted row
// i holds frequency u = (i - H/2) mod H.
#pragma once
#include <cstdint>

#include "engine/common.h"

namespace advcl::kernels {

ADVCL_HD bool highpass_keeps(int64_t i, int64_t j, int64_t H, int64_t W, double radius) {
  double di = static_cast<double>(i - H / 2), dj = static_cast<double>(j - W / 2);
  return di * di + dj * dj >= radius * radius;  // zeroed iff sqrt(d2) < r
}

}  // namespace advcl::kernels
