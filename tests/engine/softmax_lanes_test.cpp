// The softmax family's per-lane pieces (engine/kernels/softmax.h), combined
// over 32 simulated lanes in the GPU's xor-shuffle order (engine/ops/
// softmax.cu), equal the one-lane row functions that the CPU runs: every
// element is covered once, for rows shorter and longer than a warp.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/kernels/softmax.h"

using namespace advcl;

namespace {

constexpr int kLanes = 32;

// What __shfl_xor_sync's butterfly leaves in every lane.
template <class Op>
std::vector<double> butterfly(std::vector<double> v, Op op) {
  for (int offset = kLanes / 2; offset > 0; offset /= 2) {
    std::vector<double> next(v);
    for (int l = 0; l < kLanes; ++l) next[l] = op(v[l], v[l ^ offset]);
    v = next;
  }
  return v;
}

std::vector<double> row(int64_t C, uint32_t seed) {
  std::vector<double> x(static_cast<size_t>(C));
  uint32_t s = seed;
  for (auto& v : x) {
    s = s * 1664525u + 1013904223u;
    v = (static_cast<double>(s >> 8) / (1 << 24) - 0.5) * 20;
  }
  return x;
}

}  // namespace

TEST(SoftmaxLanes, WarpOfLanesEqualsOneLane) {
  for (int64_t C : {int64_t{1}, int64_t{10}, int64_t{31}, int64_t{33}, int64_t{1000}}) {
    SCOPED_TRACE(C);
    std::vector<double> x = row(C, static_cast<uint32_t>(C)), g = row(C, 7);
    std::vector<double> m(kLanes), s(kLanes);
    for (int l = 0; l < kLanes; ++l) m[l] = kernels::row_max_part(x.data(), C, l, kLanes);
    m = butterfly(m, [](double a, double b) { return std::fmax(a, b); });
    for (int l = 1; l < kLanes; ++l) ASSERT_EQ(m[l], m[0]) << "every lane holds the same max";
    for (int l = 0; l < kLanes; ++l) s[l] = kernels::row_sum_exp_part(x.data(), C, m[0], l, kLanes);
    s = butterfly(s, [](double a, double b) { return a + b; });
    for (int l = 1; l < kLanes; ++l) ASSERT_EQ(s[l], s[0]) << "every lane holds the same sum";
    double lse = m[0] + std::log(s[0]);
    EXPECT_NEAR(lse, kernels::log_sum_exp_row(x.data(), C), 1e-12);

    for (int kind = 0; kind < 2; ++kind) {
      std::vector<double> y_warp(x.size(), NAN), y_row(x.size());
      for (int l = 0; l < kLanes; ++l) kernels::softmax_write_part(x.data(), y_warp.data(), C, lse, kind, l, kLanes);
      if (kind == 0) kernels::softmax_row(x.data(), y_row.data(), C);
      else kernels::log_softmax_row(x.data(), y_row.data(), C);
      for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(y_warp[c], y_row[c], 1e-12) << "kind " << kind << " c " << c;

      // Backward: softmax needs sum(g * y), log_softmax sum(g).
      std::vector<double> dot(kLanes), gx_warp(x.size(), NAN), gx_row(x.size());
      for (int l = 0; l < kLanes; ++l)
        dot[l] = kernels::row_dot_part(g.data(), kind == 0 ? y_row.data() : nullptr, C, l, kLanes);
      dot = butterfly(dot, [](double a, double b) { return a + b; });
      for (int l = 0; l < kLanes; ++l)
        kernels::softmax_backward_write_part(y_row.data(), g.data(), gx_warp.data(), C, dot[0], kind, l, kLanes);
      if (kind == 0) kernels::softmax_backward_row(y_row.data(), g.data(), gx_row.data(), C);
      else kernels::log_softmax_backward_row(y_row.data(), g.data(), gx_row.data(), C);
      for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(gx_warp[c], gx_row[c], 1e-11) << "backward kind " << kind;
    }

    std::vector<double> ce_warp(x.size(), NAN), ce_row(x.size());
    int64_t label = C / 2;
    for (int l = 0; l < kLanes; ++l)
      kernels::cross_entropy_backward_part(x.data(), ce_warp.data(), C, label, lse, 0.5, l, kLanes);
    kernels::cross_entropy_backward_row(x.data(), ce_row.data(), C, label, -1, 0.5);
    for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(ce_warp[c], ce_row[c], 1e-12);
  }
}
