// Per-element random fills from the counter-based generator. Element i of a
// tensor whose first dimension indexes samples is element (i % per_sample) of
// sample (key.sample + i / per_sample)'s stream.
#pragma once
#include "engine/rng.h"

namespace advcl::kernels {

struct RandomFill {
  enum Kind { Uniform, Normal, Bernoulli, Integer } kind;
  RngKey key;
  int64_t per_sample;
  double a, b;  // uniform: [a, b); normal: mean a, std b; bernoulli: p = a; integer: [a, b)

  ADVCL_HD double operator()(int64_t i) const {
    RngKey k = key;
    k.sample = key.sample + static_cast<uint32_t>(i / per_sample);
    uint64_t j = static_cast<uint64_t>(i % per_sample);
    switch (kind) {
      case Uniform: return a + (b - a) * k.uniform_double(j);
      case Normal: return a + b * k.normal(j);
      case Bernoulli: return k.bernoulli(j, a) ? 1.0 : 0.0;
      case Integer: return a + static_cast<double>(k.below(j, static_cast<uint32_t>(b - a)));
    }
    return 0;
  }
};

}  // namespace advcl::kernels
