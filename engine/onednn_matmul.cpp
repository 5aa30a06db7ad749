#include "engine/onednn_matmul.h"

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/counters.h"
#include "engine/onednn_util.h"

namespace advcl::onednn {

namespace {

using dnnl::memory;
using dt = memory::data_type;
using namespace detail;

// The memory descriptors say where each element is: a transposed operand is
// the stored matrix read with swapped strides, so no copy is ever made.
struct Descs {
  memory::desc a, b, c;
  Descs(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc)
      : a({M, K}, dt::f32, ta ? memory::dims{1, lda} : memory::dims{lda, 1}),
        b({K, N}, dt::f32, tb ? memory::dims{1, ldb} : memory::dims{ldb, 1}),
        c({M, N}, dt::f32, memory::dims{ldc, 1}) {}
};

struct Plan {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
};

using Key = std::array<int64_t, 9>;

// In bf16 the primitive reads A and B as bf16 in the layouts it prefers
// (format any), into which sgemm_bf16 reorders (and so rounds) the float32
// operands; C stays float32 in the caller's layout.
const Plan& plan_for(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t ldc,
                     bool bf16) {
  static std::mutex mu;
  static std::map<Key, std::unique_ptr<Plan>> cache;
  Key key{ta, tb, M, N, K, lda, ldb, ldc, bf16};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  Descs d(ta, tb, M, N, K, lda, ldb, ldc);
  if (bf16) {
    d.a = memory::desc({M, K}, dt::bf16, memory::format_tag::any);
    d.b = memory::desc({K, N}, dt::bf16, memory::format_tag::any);
  }
  // Scratch memory comes from the caller's thread (below), so that one
  // primitive may run in several threads at once (the library's own
  // scratchpad is shared and allows no such thing in Debian's build).
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(d.a, d.b, d.c), attr, cpu_engine());
  counters::bump(bf16 ? "onednn.matmul.primitive.bf16" : "onednn.matmul.primitive");
  return *cache.emplace(key, std::make_unique<Plan>(Plan{pd, dnnl::matmul(pd)})).first->second;
}

void run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
         float* C, int64_t ldc, bool bf16) {
  guarded("matmul", bf16 ? "sgemm in bf16" : "sgemm", [&] {
    const Plan& p = plan_for(ta, tb, M, N, K, lda, ldb, ldc, bf16);
    Descs d(ta, tb, M, N, K, lda, ldb, ldc);
    auto& eng = cpu_engine();
    memory a(d.a, eng, const_cast<float*>(A)), b(d.b, eng, const_cast<float*>(B)), c(d.c, eng, C);
    thread_local std::vector<unsigned char> scratch;
    memory::desc sd = p.pd.scratchpad_desc();
    if (scratch.size() < sd.get_size()) scratch.resize(sd.get_size());
    memory sm(sd, eng, scratch.data());
    dnnl::stream s(eng);
    // to_layout: the operand itself in float32; in bf16 a converted copy.
    memory ma = to_layout(a, p.pd.src_desc(), s), mb = to_layout(b, p.pd.weights_desc(), s);
    p.prim.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, sm}});
    s.wait();
  });
}

}  // namespace

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
           float* C, int64_t ldc) {
  run(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, false);
}

void sgemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                int64_t ldb, float* C, int64_t ldc) {
  run(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, true);
}

}  // namespace advcl::onednn
