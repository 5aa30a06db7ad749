// The CPU half of bf16 autocast on the GPU: the per-element conversion the
// GPU's rounding kernel runs (kernels::convert_element, through
// cuda_ops::to_bf16 and from_bf16 in engine/ops/convert.cu) gives the bits of
// autocast::to_bf16, the rounding the CPU's bf16 ops and their tests use; and
// cuDNN plans are keyed by precision, so a bf16 plan never serves a float32
// call of the same shape. Both run on any machine.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "engine/autocast.h"
#include "engine/kernels/convert.h"
#include "engine/ops/conv2d_algorithms.h"

using namespace advcl;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t kernel_to_bf16(float f) { return kernels::convert_element<BFloat16>(f).bits; }

}  // namespace

TEST(Bf16Convert, KernelRoundingIsAutocastsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -7);  // bf16's spacing at 1 (7 stored fraction bits)
  // Ties go to the even neighbour, both ways; just above a tie rounds up.
  EXPECT_EQ(kernel_to_bf16(1 + ulp / 2), kernel_to_bf16(1.0f));
  EXPECT_EQ(kernel_to_bf16(1 + 3 * ulp / 2), kernel_to_bf16(1 + 2 * ulp));
  EXPECT_EQ(kernel_to_bf16(1 + ulp / 2 + std::ldexp(1.0f, -20)), kernel_to_bf16(1 + ulp));
  EXPECT_EQ(kernel_to_bf16(-(1 + 3 * ulp / 2)), kernel_to_bf16(-(1 + 2 * ulp)));
  // Infinities stay, values past the largest bf16 become infinite, NaN stays NaN (also one whose payload lies
  // only in the dropped bits, which truncation would turn into infinity).
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(kernel_to_bf16(inf), 0x7f80u);
  EXPECT_EQ(kernel_to_bf16(-inf), 0xff80u);
  EXPECT_EQ(kernel_to_bf16(std::numeric_limits<float>::max()), 0x7f80u);
  EXPECT_TRUE(std::isnan(autocast::from_bf16(kernel_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(autocast::from_bf16(kernel_to_bf16(from_bits(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(autocast::from_bf16(kernel_to_bf16(from_bits(0xff800001u)))));
  // The same bits as autocast::to_bf16 for every kind of float: random bit patterns cover normals of every
  // exponent, subnormals, infinities and NaNs; every fourth value has a magnitude in [2, 4) and dropped bits
  // at a tie (0x8000) or one off it, the rounding boundary.
  std::mt19937 gen(11);
  for (int i = 0; i < 1000000; ++i) {
    uint32_t u = gen();
    if (i % 4 == 1) u = (u & 0x807f0000u) | 0x40000000u | (0x7fffu + gen() % 3);
    const float f = from_bits(u);
    ASSERT_EQ(kernel_to_bf16(f), autocast::to_bf16(f)) << "bits 0x" << std::hex << u;
  }
  // bf16 -> float32 is exact: all 65,536 patterns widen as autocast::from_bf16 does.
  for (uint32_t b = 0; b < 65536; ++b) {
    BFloat16 v;
    v.bits = static_cast<uint16_t>(b);
    const float want = autocast::from_bf16(v.bits), got = kernels::convert_element<float>(v);
    uint32_t gu, wu;
    std::memcpy(&gu, &got, 4);
    std::memcpy(&wu, &want, 4);
    ASSERT_EQ(gu, wu) << "bf16 0x" << std::hex << b;
  }
}

// A cuDNN plan (descriptors and chosen algorithms, engine/ops/conv2d.cu) is
// cached per geometry and precision: bf16, float32 and TF32 plans of one
// shape are three plans; TF32 does not split float64 or bf16 plans (it plays
// no part in them), and autocast never reaches float64.
TEST(Bf16ConvPlan, PrecisionIsPartOfThePlanKey) {
  using cuda_ops::ConvPrecision;
  using cuda_ops::conv_precision;
  EXPECT_EQ(conv_precision(false, true, true), ConvPrecision::Bf16);
  EXPECT_EQ(conv_precision(false, true, false), ConvPrecision::Bf16);
  EXPECT_EQ(conv_precision(false, false, true), ConvPrecision::Tf32);
  EXPECT_EQ(conv_precision(false, false, false), ConvPrecision::Float32);
  EXPECT_EQ(conv_precision(true, false, true), ConvPrecision::Float64);
  EXPECT_EQ(conv_precision(true, true, false), ConvPrecision::Float64);
  EXPECT_STREQ(cuda_ops::precision_name(ConvPrecision::Bf16), "bf16");
}
