// Device dispatch: every op looks at its input's device and runs the CPU loop
// or the CUDA launch. In a build without CUDA the CUDA branch is an error that
// names the op (a CUDA tensor cannot exist there anyway).
#pragma once
#include "engine/common.h"

#if ADVCL_CUDA
#define ADVCL_CUDA_ONLY(...) __VA_ARGS__
#else
#define ADVCL_CUDA_ONLY(...) ::advcl::fail("this advcl was built without CUDA (rebuild with `make CUDA=1`)")
#endif
