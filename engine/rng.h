// The counter-based random number generator: Philox4x32-10 (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the generator that
// cuRAND's device API implements as curand_init/curand for
// curandStatePhilox4_32_10_t.
//
// A counter-based generator has no state to advance: the numbers are a pure
// function of (key, counter). We key every draw by
//   key     = seed (64 bits)
//   counter = {block, sample, step, purpose}
// so a value depends only on which seed, which use (purpose), which training
// step and which sample it belongs to, never on thread order, device or number
// of ranks. In cuRAND terms this is curand_init(seed, subsequence =
// step | purpose << 32, offset = 4 * (block | sample << 32)): the raw 32-bit
// words are identical on both devices. The conversions below (uniform, normal)
// are ours, written once as __host__ __device__ functions for both devices.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/common.h"

namespace advcl {

struct PhiloxWords {
  uint32_t v[4];
};

// One Philox4x32-10 block: 4 random words from a 128-bit counter and a 64-bit key.
ADVCL_HD PhiloxWords philox4x32_10(PhiloxWords ctr, uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {  // the key schedule: bump before every round but the first
      k0 += W0;
      k1 += W1;
    }
    uint64_t p0 = static_cast<uint64_t>(M0) * ctr.v[0];
    uint64_t p1 = static_cast<uint64_t>(M1) * ctr.v[2];
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = PhiloxWords{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
  }
  return ctr;
}

// Purposes: each use of randomness in the program has its own stream, so that
// adding a new use never shifts the numbers of another. The numbers are part
// of every result (goldens, resumed runs, published checkpoints): never
// renumber one, only add new ones (tests/engine/rng_test.cpp pins them).
// Comments say what `step` and `sample` of the RngKey mean in each stream.
enum class RngPurpose : uint32_t {
  Test = 0,         // the tests' own inputs
  Init = 1,         // parameter initialisation; step = FNV-1a of the parameter's name
  Shuffle = 2,      // epoch order of the data loader; step = epoch
  Augment = 3,      // per-sample transforms; step = epoch, sample = data-set index
  AttackStart = 4,  // random starts of PGD: the pretraining methods' first attack, finetuning, evaluation
  KMeans = 5,       // k-means++ seeding of the pseudo-labels; step = restart
  Dropout = 6,
  User = 100,
  // The pretraining methods' second attack: AdvCL's x_ce attack, ACL's second
  // view (AttackStart + 1000 before it had a name).
  SecondAttackStart = 1004,
  // AutoAttack's streams, in a block of their own (AttackStart << 8 = 1024
  // onwards). `sample` is the point's index in the attacked x, so a point's
  // numbers depend neither on its batch nor on which points are still robust.
  ApgdCeStart = 1025,  // APGD-CE random start; step = restart
  ApgdTStart = 1026,   // APGD-T random start; step = target * restarts + restart
  SquareInit = 1027,   // Square's initial stripes; step = 0
  SquareStep = 1028,   // Square's window and channel signs, shared by all points; step = iteration, sample = 0
};

// Addresses one stream of random words: (seed, purpose, step, sample).
struct RngKey {
  uint64_t seed = 0;
  uint32_t purpose = 0;
  uint32_t step = 0;
  uint32_t sample = 0;

  // The i-th random 32-bit word of this stream.
  ADVCL_HD uint32_t word(uint64_t i) const {
    PhiloxWords c{{static_cast<uint32_t>(i >> 2), sample, step, purpose}};
    PhiloxWords r = philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    return r.v[i & 3];
  }
  // A uniform float in (0, 1]: (w + 0.5) / 2^32, computed exactly in float
  // arithmetic the same way on every device (cuRAND's convention).
  ADVCL_HD float uniform(uint64_t i) const {
    return static_cast<float>(word(i)) * 2.3283064365386963e-10f + 1.1641532182693481e-10f;
  }
  // A uniform double in (0, 1) from two words (53 bits).
  ADVCL_HD double uniform_double(uint64_t i) const {
    uint64_t a = word(2 * i) >> 5, b = word(2 * i + 1) >> 6;  // 27 + 26 bits
    return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b) + 0.5) * (1.0 / 9007199254740992.0);
  }
  // A standard normal (Box-Muller in double precision from words 4i..4i+3).
  // Same formula on both devices; libm and CUDA's log/cos may differ in the
  // last bit, so normals agree to ~1e-15 relative, not bit for bit.
  ADVCL_HD double normal(uint64_t i) const {
    double u = uniform_double(2 * i), v = uniform_double(2 * i + 1);
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
  // An integer uniform in [0, n) (n > 0), unbiased by rejection-free 64-bit
  // multiply (Lemire's method, bias < 2^-32 for n < 2^32).
  ADVCL_HD uint32_t below(uint64_t i, uint32_t n) const {
    uint64_t w = (static_cast<uint64_t>(word(2 * i)) << 32) | word(2 * i + 1);
    // high 32 bits of w * n / 2^32 as a 96-bit product, done in two halves
    uint64_t lo = (w & 0xffffffffu) * n, hi = (w >> 32) * n;
    return static_cast<uint32_t>((hi + (lo >> 32)) >> 32);
  }
  // True with probability p.
  ADVCL_HD bool bernoulli(uint64_t i, double p) const { return uniform_double(i) < p; }
};

}  // namespace advcl
