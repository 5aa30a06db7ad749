#include "engine/ops/linear.h"

#include <atomic>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/gemm.h"

namespace advcl::ops {

namespace {
std::atomic<MatmulCpuPath> g_matmul_cpu_path{MatmulCpuPath::Blas};  // measured faster here: bench/README.md
}  // namespace

MatmulCpuPath matmul_cpu_path() { return g_matmul_cpu_path.load(); }
void set_matmul_cpu_path(MatmulCpuPath p) { g_matmul_cpu_path.store(p); }

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_dim("matmul", a, 2, "first operand");
  check_dim("matmul", b, 2, "second operand");
  check_same_kind("matmul", a, b);
  int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1);
  int64_t Kb = tb ? b.size(1) : b.size(0), N = tb ? b.size(0) : b.size(1);
  if (K != Kb)
    fail("matmul: inner dimensions differ: ", shape_str(a.shape()), (ta ? "ᵀ" : ""), " @ ", shape_str(b.shape()),
         (tb ? "ᵀ" : ""));
  Tensor y = Tensor::empty({M, N}, a.dtype(), a.device());
  // Under autocast float32 products compute in bf16 (engine/autocast.h), on either device.
  const bool bf16 = a.dtype() == DType::Float32 && autocast::runs_bf16(autocast::Op::Matmul);
  visit_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    if (M * N == 0) return;
    if (K == 0) {
      y.zero_();
      return;
    }
    if constexpr (std::is_same_v<T, float>) {
      if (bf16) {
        gemm_bf16(a.device(), ta, tb, M, N, K, a.data<T>(), a.size(1), b.data<T>(), b.size(1), y.data<T>(), N);
        return;
      }
    }
    gemm<T>(a.device(), ta, tb, M, N, K, T(1), a.data<T>(), a.size(1), b.data<T>(), b.size(1), T(0), y.data<T>(), N);
  });
  if (needs_graph({a, b})) {
    // Y = op(A) op(B). The four cases of the gradients, written with matmul itself:
    //   dA = G op(B)ᵀ (stored as Aᵀ when ta),  dB = op(A)ᵀ G (stored as Bᵀ when tb).
    record(y, "matmul", {a, b}, [ta, tb, bf16, as = a.detach(), bs = b.detach()](const Tensor& g, const Needs& needs) {
      autocast::AutocastGuard same_precision(bf16);  // the backward runs in the forward's precision
      std::vector<Tensor> r(2);
      if (needs[0]) r[0] = ta ? matmul(bs, g, tb, true) : matmul(g, bs, false, !tb);
      if (needs[1]) r[1] = tb ? matmul(g, as, true, ta) : matmul(as, g, !ta, false);
      return r;
    });
  }
  return y;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_dim("linear", x, 2, "input");
  check_dim("linear", weight, 2, "weight");
  if (x.size(1) != weight.size(1))
    fail("linear: input ", shape_str(x.shape()), " does not match weight ", shape_str(weight.shape()),
         " (expected input [N, ", weight.size(1), "])");
  Tensor y = matmul(x, weight, false, true);
  if (!bias.defined()) return y;
  if (bias.shape() != Shape{weight.size(0)})
    fail("linear: bias ", shape_str(bias.shape()), " does not match weight ", shape_str(weight.shape()));
  return add(y, bias);
}

}  // namespace advcl::ops
