// Numerical settings of the CUDA backend, settable in any build (they only
// have an effect in a CUDA build).
#pragma once

namespace advcl::cuda {

// Deterministic mode (default on): cuDNN convolutions use only algorithms
// that give the same bits on every run (cuDNN's CUDNN_DETERMINISTIC), as
// advcl's own kernels always do; where cuDNN has none for a geometry, another
// runs with a warning (engine/ops/conv2d.cu). Off lets cuDNN pick faster
// non-deterministic algorithms (e.g. atomics in backward-weight).
void set_deterministic(bool on);
bool deterministic();

// TensorFloat-32 (default on, as PyTorch does for cuDNN convolutions):
// float32 convolutions (cuDNN's default math type instead of FMA-only math)
// and matmuls (cuBLAS's TF32 tensor-op math mode) run on tensor cores with
// 10-bit mantissas: several times faster on Ampere and Hopper, and good to
// about 1e-3 relative, which training does not notice. Off keeps full
// float32 precision, matching the CPU to rounding: the CLI's
// `--precision fp32`, and the GPU tests that hold float32 results to the
// CPU's at tight tolerances (Tf32Scope below). Float64 is never affected.
void set_allow_tf32(bool on);
bool allow_tf32();

// Sets allow_tf32 for a scope and restores the previous value on exit.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool on) : prev_(allow_tf32()) { set_allow_tf32(on); }
  ~Tf32Scope() { set_allow_tf32(prev_); }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool prev_;
};

}  // namespace advcl::cuda
