#include "engine/blas.h"

#include <cblas.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <mutex>

#include "engine/counters.h"

extern "C" void openblas_set_num_threads(int);

namespace advcl::blas {

namespace {

// OpenBLAS (Debian's pthreads build) keeps a thread pool of its own; next to
// our OpenMP threads it oversubscribes the cores: after each GEMM its workers
// spin while OpenMP's wake up for the next op, and the other way round. So
// OpenBLAS runs single-threaded (set here on first use, and by
// set_num_threads), and a large product is split into row (or column) blocks
// of C, one per OpenMP thread.
void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

constexpr double kSplitFlops = 4e6;  // below this, one call (threads cost more than they give)

// Calls gemm_block(m0, m1, n0, n1) for disjoint blocks of C covering [0, M) x [0, N).
template <class F>
void split(int64_t M, int64_t N, int64_t K, F&& gemm_block) {
  single_threaded_blas();
#ifdef _OPENMP
  if (2.0 * M * N * K >= kSplitFlops && omp_get_max_threads() > 1 && !omp_in_parallel()) {
    bool rows = M >= N;
#pragma omp parallel
    {
      int64_t T = omp_get_num_threads(), t = omp_get_thread_num(), L = rows ? M : N;
      int64_t a = L * t / T, b = L * (t + 1) / T;
      if (b > a) rows ? gemm_block(a, b, int64_t{0}, N) : gemm_block(int64_t{0}, M, a, b);
    }
    return;
  }
#endif
  gemm_block(0, M, 0, N);
}

template <class T, class Call>
void gemm_split(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
                T* C, int64_t ldc, Call&& call) {
  counters::bump("blas.gemm");
  split(M, N, K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    // op(A) rows m0..m1: rows of A, or columns when A is stored transposed; likewise op(B) columns.
    const T* a = ta ? A + m0 : A + m0 * lda;
    const T* b = tb ? B + n0 * ldb : B + n0;
    call(static_cast<int>(m1 - m0), static_cast<int>(n1 - n0), a, b, C + m0 * ldc + n0);
  });
}

}  // namespace

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_split(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, [&](int m, int n, const float* a, const float* b, float* c) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                static_cast<int>(K), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
                static_cast<int>(ldc));
  });
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_split(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, [&](int m, int n, const double* a, const double* b, double* c) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                static_cast<int>(K), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
                static_cast<int>(ldc));
  });
}

}  // namespace advcl::blas
