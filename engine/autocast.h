// Mixed precision (autocast): which ops compute in bfloat16 when it is on, and
// why. The table kPolicy below is the one place that decides; the ops ask it
// through runs_bf16(). Off by default: the paper's numerics are float32.
//
// What bf16 means here: the op rounds its float32 inputs and weights to
// bfloat16 (round to nearest even, to_bf16 below), multiplies in bf16 and
// accumulates in float32; its outputs and gradients are float32 tensors.
// Nothing else changes type: parameters (the master weights), the optimiser's
// state and checkpoints stay float32, and every other op computes in float32.
// float64 tensors are never touched (the finite-difference checks stay exact).
//
// Autocast is per thread (as torch.autocast): AutocastGuard turns it on or off
// for the calling thread until the guard ends. An op decides at its forward
// call and its backward runs in the same precision, wherever the backward pass
// is run from.
#pragma once
#include <cstdint>
#include <cstring>

#include "engine/common.h"

namespace advcl::autocast {

// The ops the policy speaks of. Only Conv2d and Matmul query it (the others
// are listed so that the table says why they stay float32).
enum class Op {
  Conv2d,            // forward, backward-data and backward-weight
  Matmul,            // matmul and linear (the projection heads, the classifier)
  BatchNorm,         // statistics and normalisation
  Softmax,           // softmax, log-softmax
  Loss,              // cross-entropy, SupCon, KL
  L2Normalize,       // the features before SupCon
  FftHighPass,       // the high-frequency view
  Reduction,         // sums, means, norms
  SgdUpdate,         // the parameter and momentum update
  AttackPerturbation // PGD's delta: sign step, projection to the eps ball, clamp to [0, 1]
};

enum class Compute {
  Bf16Fp32Accumulate,  // bf16 inputs and weights, float32 accumulation and output
  Fp32                 // float32 throughout
};

struct Rule {
  Op op;
  const char* name;
  Compute compute;
  const char* why;
};

// The policy, as PyTorch's CPU autocast for the ops we have (conv2d, matmul
// and linear in bf16; reductions, normalisations and losses in float32).
inline constexpr Rule kPolicy[] = {
    {Op::Conv2d, "conv2d", Compute::Bf16Fp32Accumulate,
     "dot products of length Cin*kH*kW: each input is rounded by at most 2^-8 (0.4%) relative (bf16 keeps 8 significant bits), the sums "
     "stay float32 so the error does not grow with the length, and they run on the CPU's bf16 dot-product "
     "units (twice the float32 multiply-adds per instruction) and the GPU's tensor cores"},
    {Op::Matmul, "matmul/linear", Compute::Bf16Fp32Accumulate, "the same dot products as conv2d"},
    {Op::BatchNorm, "batch_norm", Compute::Fp32,
     "mean and variance of a whole batch: bf16's 8-bit mantissa would cancel in E[x^2] - E[x]^2"},
    {Op::Softmax, "softmax/log_softmax", Compute::Fp32, "exp and log over a row; cheap, and sensitive to rounding"},
    {Op::Loss, "cross_entropy/supcon/kl", Compute::Fp32,
     "the losses are small differences of log-probabilities; the gradient starts here"},
    {Op::L2Normalize, "l2_normalize", Compute::Fp32, "a norm (a reduction) and a division"},
    {Op::FftHighPass, "fft_highpass", Compute::Fp32, "an FFT: long sums of terms that cancel"},
    {Op::Reduction, "sum/mean/norm", Compute::Fp32, "long sums lose everything below 2^-8 of the total in bf16"},
    {Op::SgdUpdate, "sgd", Compute::Fp32,
     "lr * grad is often below bf16's resolution of the weight: the master weights must be float32"},
    {Op::AttackPerturbation, "pgd perturbation", Compute::Fp32,
     "steps of eps/4 = 2/255 near pixel values up to 1 would round away in bf16 (spacing 2^-8 near 1)"},
};

// The rule of `op` (every Op has exactly one; tests check the table).
const Rule& rule(Op op);

// Whether autocast is on for the calling thread.
bool enabled();

// Whether `op` computes in bf16 now: autocast is on for this thread and the
// policy says bf16 for it. float32 tensors only; callers check the dtype.
bool runs_bf16(Op op);

// Turns autocast on (or off) for the calling thread, restoring the previous
// state at the end of the scope. Guards nest.
class AutocastGuard {
 public:
  explicit AutocastGuard(bool on = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool previous_;
};

// float32 -> bfloat16 bits, rounding to nearest with ties to even (as oneDNN's
// reorder and PyTorch's conversion). NaN stays NaN (quiet); infinities and
// values that round past the largest bf16 become infinities.
ADVCL_HD uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN, kept quiet
  u += 0x7fffu + ((u >> 16) & 1u);  // adds half an ulp, plus one when the kept part is odd: ties go to even
  return static_cast<uint16_t>(u >> 16);
}

ADVCL_HD float from_bf16(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// f rounded to the nearest bf16 value, as a float.
ADVCL_HD float round_bf16(float f) { return from_bf16(to_bf16(f)); }

}  // namespace advcl::autocast
