// The multi-tensor SGD update (engine/kernels/sgd.h): every parameter of a
// step in one parallel loop on the CPU and one launch per kernels::
// kSgdMaxTensors parameters on a GPU, instead of a handful of elementwise ops
// and temporaries per parameter. Nothing is allocated.
#pragma once
#include <vector>

#include "engine/kernels/sgd.h"
#include "engine/tensor.h"

namespace advcl::ops {

struct SgdEntry {
  Tensor param;        // updated in place
  Tensor grad;         // same shape, dtype and device
  Tensor buf;          // the momentum buffer (undefined without momentum), updated in place
  bool first = false;  // buf holds nothing yet: it becomes d
};

// Entries may mix dtypes and devices (each group runs on its own).
void sgd_update(const std::vector<SgdEntry>& entries, const kernels::SgdHyper& hyper);

}  // namespace advcl::ops
