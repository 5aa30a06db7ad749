#include "engine/parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/common.h"

extern "C" void openblas_set_num_threads(int);

namespace advcl {

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1) fail("set_num_threads: need at least 1 thread, got ", n);
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  openblas_set_num_threads(1);  // OpenBLAS runs inside our OpenMP threads (engine/blas.cpp)
}

}  // namespace advcl
