#include "engine/onednn_matmul.h"

#include <array>
#include <map>
#include <memory>
#include <mutex>

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

using Key = std::array<int64_t, 8>;

const dnnl::matmul& primitive_for(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                                  int64_t ldc) {
  static std::mutex mu;
  static std::map<Key, std::unique_ptr<dnnl::matmul>> cache;
  Key key{ta, tb, M, N, K, lda, ldb, ldc};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  Descs d(ta, tb, M, N, K, lda, ldb, ldc);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(d.a, d.b, d.c), cpu_engine());
  counters::bump("onednn.matmul.primitive");
  return *cache.emplace(key, std::make_unique<dnnl::matmul>(pd)).first->second;
}

}  // namespace

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
           float* C, int64_t ldc) {
  guarded("matmul", "sgemm", [&] {
    const dnnl::matmul& p = primitive_for(ta, tb, M, N, K, lda, ldb, ldc);
    Descs d(ta, tb, M, N, K, lda, ldb, ldc);
    auto& eng = cpu_engine();
    memory a(d.a, eng, const_cast<float*>(A)), b(d.b, eng, const_cast<float*>(B)), c(d.c, eng, C);
    dnnl::stream s(eng);
    p.execute(s, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    s.wait();
  });
}

}  // namespace advcl::onednn
