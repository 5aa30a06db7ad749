// CUDA entry point of the random fills (implemented in random.cu): the same
// kernels/random.h function per element as the CPU loop.
#pragma once
#include "engine/kernels/random.h"

namespace advcl::cuda_ops {

template <class T>
void random_fill(const kernels::RandomFill& f, T* out, int64_t n);

}  // namespace advcl::cuda_ops
