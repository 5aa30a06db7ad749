// Numerical settings of the CUDA backend, settable in any build (they only
// have an effect in a CUDA build).
#pragma once

namespace advcl::cuda {

// Deterministic mode (default on): cuDNN convolutions use only algorithms
// that give the same bits on every run (cuDNN's CUDNN_DETERMINISTIC), as
// advcl's own kernels always do. Off lets cuDNN pick faster
// non-deterministic algorithms (e.g. atomics in backward-weight).
void set_deterministic(bool on);
bool deterministic();

// TensorFloat-32 (default off): float matmuls and convolutions on tensor
// cores with 10-bit mantissas, much faster on Ampere/Hopper but only good to
// about 1e-3 relative. Off keeps full float precision, matching the CPU.
void set_allow_tf32(bool on);
bool allow_tf32();

}  // namespace advcl::cuda
