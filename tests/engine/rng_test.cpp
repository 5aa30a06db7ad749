#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <set>
#include <utility>

#include "engine/ops/random.h"
#include "engine/rng.h"

using namespace advcl;

// Known-answer vectors published with the Random123 library (kat_vectors):
// counter (4 words), key (2 words) -> output (4 words).
TEST(Philox, PublishedTestVectors) {
  struct Kat {
    PhiloxWords ctr;
    uint32_t k0, k1;
    PhiloxWords want;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    PhiloxWords got = philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], k.want.v[i]) << "word " << i;
  }
}

TEST(Philox, KeyedStreamsAreIndependentOfOrder) {
  RngKey a{42, 3, 7, 11};
  // Same key, same index: same word, however it is reached.
  RngKey same{42, 3, 7, 11};
  EXPECT_EQ(a.word(5), same.word(5));
  // Different purpose / step / sample / seed: different words.
  std::set<uint32_t> seen{a.word(0), RngKey{42, 4, 7, 11}.word(0), RngKey{42, 3, 8, 11}.word(0),
                          RngKey{42, 3, 7, 12}.word(0), RngKey{43, 3, 7, 11}.word(0)};
  EXPECT_EQ(seen.size(), 5u);
}

TEST(Philox, UniformRangeAndMoments) {
  RngKey k{1, 0, 0, 0};
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    float u = k.uniform(i);
    ASSERT_GT(u, 0.0f);
    ASSERT_LE(u, 1.0f);
    double d = k.uniform_double(i);
    ASSERT_GT(d, 0.0);
    ASSERT_LT(d, 1.0);
    sum += d;
    sq += d * d;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  EXPECT_NEAR(sq / n - 0.25, 1.0 / 12, 0.002);
}

TEST(Philox, NormalBernoulliIntegerDistributions) {
  RngKey k{2, 0, 0, 0};
  const int n = 200000;
  double sum = 0, sq = 0, hits = 0;
  std::vector<int> counts(7, 0);
  for (int i = 0; i < n; ++i) {
    double z = k.normal(i);
    sum += z;
    sq += z * z;
    hits += k.bernoulli(i, 0.3);
    uint32_t b = k.below(i, 7);
    ASSERT_LT(b, 7u);
    counts[b]++;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.01);
  EXPECT_NEAR(hits / n, 0.3, 0.005);
  for (int c : counts) EXPECT_NEAR(c / double(n), 1.0 / 7, 0.005);
}

TEST(RandomOps, PerSampleStreamsDoNotDependOnBatching) {
  RngKey key{5, static_cast<uint32_t>(RngPurpose::AttackStart), 9, 0};
  Tensor whole = ops::rand_uniform({6, 2, 3}, key, -1, 1);
  RngKey tail = key;
  tail.sample = 4;  // the same samples 4 and 5, drawn as their own batch
  Tensor part = ops::rand_uniform({2, 2, 3}, tail, -1, 1);
  std::vector<float> w = whole.to_vector<float>(), p = part.to_vector<float>();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(w[24 + i], p[i]);
  for (float v : w) {
    EXPECT_GE(v, -1.0f);
    EXPECT_LE(v, 1.0f);
  }
  Tensor ints = ops::rand_int({1000}, key, 3, 9);
  for (int64_t v : ints.to_vector<int64_t>()) {
    EXPECT_GE(v, 3);
    EXPECT_LT(v, 9);
  }
  EXPECT_THROW(ops::rand_bernoulli({3}, key, 1.5), Error);
  // The bound is 32-bit: 2^32 - 1 values work, 2^32 would wrap to 0.
  EXPECT_NO_THROW(ops::rand_int({2}, key, 0, (int64_t{1} << 32) - 1));
  EXPECT_THROW(ops::rand_int({2}, key, 0, int64_t{1} << 32), Error);
  EXPECT_THROW(ops::rand_int({2}, key, 5, 5), Error);
}

// Every purpose's number is baked into goldens, resumed runs and published
// checkpoints: renumbering one silently changes every result that uses it.
// This pins each to the number it has always had (the later ones were first
// written as arithmetic on AttackStart, kept here as the record).
TEST(RngPurposes, KeepTheirHistoricalNumbersAndAreDistinct) {
  const uint32_t attack = 4;
  const std::pair<RngPurpose, uint32_t> pinned[] = {
      {RngPurpose::Test, 0},
      {RngPurpose::Init, 1},
      {RngPurpose::Shuffle, 2},
      {RngPurpose::Augment, 3},
      {RngPurpose::AttackStart, attack},
      {RngPurpose::KMeans, 5},
      {RngPurpose::Dropout, 6},
      {RngPurpose::User, 100},
      {RngPurpose::SecondAttackStart, attack + 1000},
      {RngPurpose::ApgdCeStart, (attack << 8) + 1},
      {RngPurpose::ApgdTStart, (attack << 8) + 2},
      {RngPurpose::SquareInit, (attack << 8) + 3},
      {RngPurpose::SquareStep, (attack << 8) + 4},
  };
  std::set<uint32_t> numbers;
  for (const auto& [purpose, number] : pinned) {
    EXPECT_EQ(static_cast<uint32_t>(purpose), number);
    numbers.insert(static_cast<uint32_t>(purpose));
  }
  EXPECT_EQ(numbers.size(), std::size(pinned)) << "two purposes share a number";
}
