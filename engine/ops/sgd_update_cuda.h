// CUDA entry point of the multi-tensor SGD update (engine/ops/sgd_update.cu):
// one launch over the table's chunks, a block per chunk.
#pragma once
#include "engine/kernels/sgd.h"

namespace advcl::cuda_ops {

template <class T>
void sgd_update(const kernels::SgdTable<T>& table, const kernels::SgdHyper& hyper);

}  // namespace advcl::cuda_ops
