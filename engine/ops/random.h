// Tensors of random numbers from the counter-based generator (engine/rng.h).
// Element [n, rest...] is drawn from the stream (seed, purpose, step,
// sample = key.sample + n) at position `rest`, so a sample's numbers do not
// depend on which batch or rank it is in.
#pragma once
#include "engine/rng.h"
#include "engine/tensor.h"

namespace advcl::ops {

Tensor rand_uniform(const Shape& shape, RngKey key, double lo = 0, double hi = 1, DType dtype = DType::Float32,
                    Device device = Device::cpu());
Tensor rand_normal(const Shape& shape, RngKey key, double mean = 0, double std = 1, DType dtype = DType::Float32,
                   Device device = Device::cpu());
Tensor rand_bernoulli(const Shape& shape, RngKey key, double p, DType dtype = DType::Float32,
                      Device device = Device::cpu());
// Integers uniform in [lo, hi), int64.
Tensor rand_int(const Shape& shape, RngKey key, int64_t lo, int64_t hi, Device device = Device::cpu());

}  // namespace advcl::ops
