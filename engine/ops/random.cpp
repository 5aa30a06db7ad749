#include "engine/ops/random.h"

#include "engine/dispatch.h"
#include "engine/kernels/random.h"
#include "engine/ops/random_cuda.h"
#include "engine/parallel.h"

namespace advcl::ops {

namespace {

Tensor fill(const Shape& shape, kernels::RandomFill f, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  int64_t n = t.numel();
  f.per_sample = shape.empty() || shape[0] == 0 ? std::max<int64_t>(n, 1) : n / shape[0];
  if (f.per_sample == 0) return t;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    if (on_cuda("random fill", device))
      ADVCL_CUDA_ONLY(cuda_ops::random_fill(f, p, n));
    else
      parallel_for(n, [&](int64_t i) { p[i] = static_cast<T>(f(i)); });
  };
  if (dtype == DType::Int64)
    run(int64_t{});
  else
    visit_float(dtype, "random", run);
  return t;
}

}  // namespace

Tensor rand_uniform(const Shape& shape, RngKey key, double lo, double hi, DType dtype, Device device) {
  if (!(lo <= hi)) fail("rand_uniform: low ", lo, " is above high ", hi);
  return fill(shape, {kernels::RandomFill::Uniform, key, 1, lo, hi}, dtype, device);
}

Tensor rand_normal(const Shape& shape, RngKey key, double mean, double std, DType dtype, Device device) {
  if (!(std >= 0)) fail("rand_normal: std must be >= 0, got ", std);
  return fill(shape, {kernels::RandomFill::Normal, key, 1, mean, std}, dtype, device);
}

Tensor rand_bernoulli(const Shape& shape, RngKey key, double p, DType dtype, Device device) {
  if (!(p >= 0 && p <= 1)) fail("rand_bernoulli: p must be in [0, 1], got ", p);
  return fill(shape, {kernels::RandomFill::Bernoulli, key, 1, p, 0}, dtype, device);
}

Tensor rand_int(const Shape& shape, RngKey key, int64_t lo, int64_t hi, Device device) {
  // The draw is below(j, hi - lo) with a 32-bit bound: 2^32 - 1 values at most.
  if (hi <= lo || hi - lo >= (int64_t{1} << 32))
    fail("rand_int: empty or too large range [", lo, ", ", hi, ") (at most 2^32 - 1 values)");
  return fill(shape, {kernels::RandomFill::Integer, key, 1, static_cast<double>(lo), static_cast<double>(hi)},
              DType::Int64, device);
}

}  // namespace advcl::ops
