// The float32 matmul paths (oneDNN, and OpenBLAS split over our threads)
// against plain loops and each other, and the oneDNN primitive caches (what
// is built, and how often).
#include <gtest/gtest.h>

#include <array>

#include "engine/blas.h"
#include "engine/counters.h"
#include "engine/ops.h"
#include "engine/ops/gemm.h"
#include "engine/parallel.h"

using namespace advcl;

namespace {

Tensor rnd(const Shape& s, uint32_t step, DType dt = DType::Float32) {
  return ops::rand_uniform(s, {8, 0, step, 0}, -1, 1, dt);
}

// op(a) op(b) in float64 loops; a, b as stored.
std::vector<double> matmul_loops(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  int64_t M = ta ? a.size(1) : a.size(0), K = ta ? a.size(0) : a.size(1), N = tb ? b.size(0) : b.size(1);
  std::vector<double> av = a.to(DType::Float64).to_vector<double>(), bv = b.to(DType::Float64).to_vector<double>();
  std::vector<double> c(M * N, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k)
        c[i * N + j] += (ta ? av[k * M + i] : av[i * K + k]) * (tb ? bv[j * K + k] : bv[k * N + j]);
  return c;
}

struct PathGuard {  // restores the path in use before, even when an assertion fails
  ops::MatmulCpuPath saved = ops::matmul_cpu_path();
  ~PathGuard() { ops::set_matmul_cpu_path(saved); }
};

}  // namespace

TEST(OneDnnMatmul, MatchesPlainLoopsAndTheBlasInAllFourTransposes) {
  PathGuard guard;
  const int64_t M = 37, K = 53, N = 19;  // odd sizes: no kernel's natural blocking
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Tensor a = ta ? rnd({K, M}, 1) : rnd({M, K}, 1), b = tb ? rnd({N, K}, 2) : rnd({K, N}, 2);
      std::vector<double> want = matmul_loops(a, b, ta, tb);
      ops::set_matmul_cpu_path(ops::MatmulCpuPath::OneDnn);
      int64_t built = counters::get("onednn.matmul.primitive");
      std::vector<float> dnn = ops::matmul(a, b, ta, tb).to_vector<float>();
      EXPECT_EQ(counters::get("onednn.matmul.primitive"), built + 1) << "the oneDNN path did not run";
      ops::set_matmul_cpu_path(ops::MatmulCpuPath::Blas);
      std::vector<float> blas = ops::matmul(a, b, ta, tb).to_vector<float>();
      ASSERT_EQ(dnn.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(dnn[i], want[i], 1e-4) << "ta " << ta << " tb " << tb << " element " << i;
        ASSERT_NEAR(blas[i], want[i], 1e-4) << "ta " << ta << " tb " << tb << " element " << i;
      }
    }
}

TEST(OneDnnMatmul, HonoursRowLengthsLongerThanTheRows) {
  // A block of a wider C, from sub-blocks of wider A and B: lda, ldb, ldc > the used widths.
  PathGuard guard;
  const int64_t M = 5, N = 4, K = 6, lda = 9, ldb = 7, ldc = 11;
  std::vector<float> A = rnd({M, lda}, 3).to_vector<float>(), B = rnd({K, ldb}, 4).to_vector<float>();
  for (auto path : {ops::MatmulCpuPath::OneDnn, ops::MatmulCpuPath::Blas}) {
  ops::set_matmul_cpu_path(path);
  std::vector<float> C(M * ldc, -7.0f);
  ops::gemm<float>(Device::cpu(), false, false, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), ldc);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      if (j >= N) {
        EXPECT_EQ(C[i * ldc + j], -7.0f) << "wrote outside the block at " << i << ", " << j;
        continue;
      }
      double want = 0;
      for (int64_t k = 0; k < K; ++k) want += double(A[i * lda + k]) * B[k * ldb + j];
      EXPECT_NEAR(C[i * ldc + j], want, 1e-5);
    }
  }
}

TEST(OneDnnMatmul, LinearGradientsAgreeWithTheBlasPath) {
  PathGuard guard;
  Tensor x = rnd({33, 20}, 5), w = rnd({12, 20}, 6), b = rnd({12}, 7), gy = rnd({33, 12}, 8);
  std::vector<std::vector<float>> out[2];
  for (int p = 0; p < 2; ++p) {
    ops::set_matmul_cpu_path(p == 0 ? ops::MatmulCpuPath::OneDnn : ops::MatmulCpuPath::Blas);
    Tensor xs = x.clone().set_requires_grad(), ws = w.clone().set_requires_grad(), bs = b.clone().set_requires_grad();
    Tensor y = ops::linear(xs, ws, bs);
    std::vector<Tensor> g = grad(y, {xs, ws, bs}, gy);
    out[p] = {y.to_vector<float>(), g[0].to_vector<float>(), g[1].to_vector<float>(), g[2].to_vector<float>()};
  }
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(out[0][t].size(), out[1][t].size());
    for (size_t i = 0; i < out[0][t].size(); ++i) ASSERT_NEAR(out[0][t][i], out[1][t][i], 1e-5) << "tensor " << t;
  }
}

TEST(OneDnnMatmul, OnePrimitivePerShape) {
  PathGuard guard;
  ops::set_matmul_cpu_path(ops::MatmulCpuPath::OneDnn);
  Tensor a = rnd({29, 31}, 9), b = rnd({31, 23}, 10), c = rnd({30, 31}, 11);
  int64_t before = counters::get("onednn.matmul.primitive");
  ops::matmul(a, b);
  ops::matmul(a, b);
  ops::matmul(rnd({29, 31}, 12), b);  // new data, same shape
  EXPECT_EQ(counters::get("onednn.matmul.primitive"), before + 1);
  ops::matmul(c, b);  // another shape
  EXPECT_EQ(counters::get("onednn.matmul.primitive"), before + 2);
  // float64 stays on the BLAS
  ops::matmul(a.to(DType::Float64), b.to(DType::Float64));
  EXPECT_EQ(counters::get("onednn.matmul.primitive"), before + 2);
}

TEST(OneDnnConv, BackwardPrimitivesAreSharedWithAndWithoutBiasAndBuiltOnFirstUse) {
  // A geometry no other test uses, so that the caches start empty for it.
  Tensor x = rnd({3, 5, 11, 13}, 20), w = rnd({6, 5, 3, 3}, 21), b = rnd({6}, 22);
  ops::Conv2dOptions opt{1, 1};
  auto count = [](const char* pass) { return counters::get(std::string("onednn.conv.plan.") + pass); };
  int64_t f0 = count("forward"), d0 = count("backward_data"), w0 = count("backward_weights");
  {
    NoGradGuard no_grad;  // inference: a forward primitive only
    ops::conv2d(x, w, b, opt);
  }
  EXPECT_EQ(count("forward"), f0 + 1);
  EXPECT_EQ(count("backward_data"), d0);
  EXPECT_EQ(count("backward_weights"), w0);
  // The input gradient alone (as PGD asks): no weight-gradient primitive.
  Tensor xg = x.clone().set_requires_grad();
  grad(ops::conv2d(xg, w, b, opt), {xg}, Tensor::ones({3, 6, 11, 13}));
  EXPECT_EQ(count("forward"), f0 + 1);
  EXPECT_EQ(count("backward_data"), d0 + 1);
  EXPECT_EQ(count("backward_weights"), w0);
  // All gradients, with and then without bias: one more forward (no bias), one weight-gradient primitive.
  std::vector<Tensor> with_bias, without_bias;
  for (bool bias : {true, false}) {
    Tensor xs = x.clone().set_requires_grad(), ws = w.clone().set_requires_grad(), bs = b.clone().set_requires_grad();
    Tensor y = ops::conv2d(xs, ws, bias ? bs : Tensor(), opt);
    (bias ? with_bias : without_bias) = grad(y, {xs, ws}, rnd(y.shape(), 23));
  }
  EXPECT_EQ(count("forward"), f0 + 2);
  EXPECT_EQ(count("backward_data"), d0 + 1);
  EXPECT_EQ(count("backward_weights"), w0 + 1);
  // The shared backward primitives give the same gradients either way (the bias does not enter them).
  for (int t = 0; t < 2; ++t) {
    std::vector<float> p = with_bias[t].to_vector<float>(), q = without_bias[t].to_vector<float>();
    for (size_t i = 0; i < p.size(); ++i) ASSERT_EQ(p[i], q[i]) << "gradient " << t << " element " << i;
  }
}

TEST(BlasGemm, ProductsSplitOverThreadsMatchPlainLoops) {
  // Above the split threshold, with more rows than columns (split by rows) and
  // the other way round (by columns), all four transposes, float32 and float64,
  // and beta = 1 accumulating into C.
  PathGuard guard;
  ops::set_matmul_cpu_path(ops::MatmulCpuPath::Blas);
  int before = num_threads();
  set_num_threads(2);
  for (auto [M, N, K] : {std::array<int64_t, 3>{301, 97, 120}, std::array<int64_t, 3>{67, 263, 130}})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        Tensor a = ta ? rnd({K, M}, 30, DType::Float64) : rnd({M, K}, 30, DType::Float64);
        Tensor b = tb ? rnd({N, K}, 31, DType::Float64) : rnd({K, N}, 31, DType::Float64);
        std::vector<double> want = matmul_loops(a, b, ta, tb);
        std::vector<double> got64 = ops::matmul(a, b, ta, tb).to_vector<double>();
        std::vector<float> got32 = ops::matmul(a.to(DType::Float32), b.to(DType::Float32), ta, tb).to_vector<float>();
        std::vector<double> acc(M * N, 1.0);  // C = 1 + op(A) op(B)
        blas::gemm(ta, tb, M, N, K, 1.0, a.data<double>(), a.size(1), b.data<double>(), b.size(1), 1.0, acc.data(), N);
        for (size_t i = 0; i < want.size(); ++i) {
          ASSERT_NEAR(got64[i], want[i], 1e-11) << M << "x" << N << " ta " << ta << " tb " << tb << " element " << i;
          ASSERT_NEAR(got32[i], want[i], 2e-4) << M << "x" << N << " ta " << ta << " tb " << tb << " element " << i;
          ASSERT_NEAR(acc[i], want[i] + 1.0, 1e-11) << M << "x" << N << " ta " << ta << " tb " << tb << " element " << i;
        }
      }
  set_num_threads(before);
}
