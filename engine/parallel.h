// The CPU side of "kernel math is written once": a kernel is a function of an
// index; on the CPU we call it for every index in an OpenMP loop, on the GPU a
// grid calls it once per thread (cuda/launch.cuh).
#pragma once
#include <cstdint>

namespace advcl {

// Calls f(i) for i in [0, n), spread over OpenMP threads when n >= grain.
template <class F>
void parallel_for(int64_t n, F&& f, int64_t grain = 16384) {
#pragma omp parallel for schedule(static) if (n >= grain)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Number of threads CPU ops use (OpenMP's, set by OMP_NUM_THREADS or set_num_threads).
int num_threads();
void set_num_threads(int n);

}  // namespace advcl
