// The vendor-library paths (BLAS GEMM, im2col convolution) against plain loops.
#include <gtest/gtest.h>

#include "engine/ops.h"

using namespace advcl;

namespace {

Tensor rnd(const Shape& s, uint32_t step) {
  return ops::rand_uniform(s, {7, 0, step, 0}, -1, 1, DType::Float64);
}

// out[n, co, oh, ow] = b[co] + sum_{ci, kh, kw} x[n, ci, oh*s-p+kh, ow*s-p+kw] w[co, ci, kh, kw]
std::vector<double> conv_loops(const Tensor& x, const Tensor& w, const Tensor& b, int s, int p, Shape& out_shape) {
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  int64_t O = w.size(0), KH = w.size(2), KW = w.size(3);
  int64_t OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
  out_shape = {N, O, OH, OW};
  std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>(), out(N * O * OH * OW);
  std::vector<double> bv = b.defined() ? b.to_vector<double>() : std::vector<double>(O, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bv[o];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t ih = oh * s - p + kh, iw = ow * s - p + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += xv[((n * C + c) * H + ih) * W + iw] * wv[((o * C + c) * KH + kh) * KW + kw];
              }
          out[((n * O + o) * OH + oh) * OW + ow] = acc;
        }
  return out;
}

}  // namespace

TEST(Reference, Conv2dMatchesPlainLoops) {
  struct Case {
    Shape x, w;
    int s, p;
  };
  for (const Case& c : {Case{{3, 5, 9, 9}, {7, 5, 3, 3}, 1, 1}, Case{{2, 4, 10, 8}, {6, 4, 3, 3}, 2, 1},
                        Case{{2, 8, 8, 8}, {4, 8, 1, 1}, 2, 0}, Case{{1, 3, 6, 7}, {2, 3, 5, 3}, 1, 2}}) {
    Tensor x = rnd(c.x, 1), w = rnd(c.w, 2), b = rnd({c.w[0]}, 3);
    Shape shape;
    std::vector<double> want = conv_loops(x, w, b, c.s, c.p, shape);
    Tensor y = ops::conv2d(x, w, b, {c.s, c.p});
    ASSERT_EQ(y.shape(), shape);
    std::vector<double> got = y.to_vector<double>();
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-12) << "element " << i;
    // float32 through oneDNN and through im2col + sgemm, against the double loops
    for (ops::CpuPath path : {ops::CpuPath::OneDnn, ops::CpuPath::Im2colBlas}) {
      ops::set_cpu_path(path);
      std::vector<float> got32 = ops::conv2d(x.to(DType::Float32), w.to(DType::Float32), b.to(DType::Float32),
                                             {c.s, c.p}).to_vector<float>();
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got32[i], want[i], 1e-4) << "element " << i;
    }
    ops::set_cpu_path(ops::CpuPath::OneDnn);
  }
}

TEST(Reference, Conv2dLargeBatchUsesSeveralChunks) {
  // 64 MiB column buffer / (K * P * 8 bytes) images per chunk: with K = 16*9,
  // P = 32*32 that is 56 images, so 130 images take three chunks.
  Tensor x = rnd({130, 16, 32, 32}, 4), w = rnd({2, 16, 3, 3}, 5);
  Shape shape;
  std::vector<double> want = conv_loops(x, w, Tensor(), 1, 1, shape);
  std::vector<double> got = ops::conv2d(x, w, Tensor(), {1, 1}).to_vector<double>();
  for (size_t i = 0; i < want.size(); i += 97) ASSERT_NEAR(got[i], want[i], 1e-12) << "element " << i;
  // the weight gradient accumulates over the chunks: compare with a sum of per-image gradients
  Tensor gy = rnd({130, 2, 32, 32}, 6);
  Tensor gw = ops::conv2d_backward_weight(gy, x, w.shape(), {1, 1});
  Tensor sum = Tensor::zeros(w.shape(), DType::Float64);
  for (int64_t n = 0; n < 130; n += 13) {
    Tensor part = ops::conv2d_backward_weight(gy.narrow0(n, 13), x.narrow0(n, 13), w.shape(), {1, 1});
    sum = ops::add(sum, part);
  }
  std::vector<double> a = gw.to_vector<double>(), b = sum.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-9);
}

TEST(Reference, Conv2dFloat32PathsAgreeForwardAndBackward) {
  // oneDNN (the default float32 path) against im2col + BLAS, all three passes.
  struct Case {
    Shape x, w;
    int s, p;
  };
  for (const Case& c : {Case{{4, 16, 12, 12}, {8, 16, 3, 3}, 1, 1}, Case{{3, 8, 9, 9}, {16, 8, 3, 3}, 2, 1},
                        Case{{2, 8, 8, 8}, {4, 8, 1, 1}, 2, 0}}) {
    Tensor x = rnd(c.x, 20).to(DType::Float32), w = rnd(c.w, 21).to(DType::Float32);
    ops::Conv2dOptions opt{c.s, c.p};
    Tensor y_ref = ops::conv2d_forward(x, w, Tensor(), opt);
    Tensor gy = rnd(y_ref.shape(), 22).to(DType::Float32);
    std::vector<std::vector<float>> results[2];
    for (int k = 0; k < 2; ++k) {
      ops::set_cpu_path(k == 0 ? ops::CpuPath::OneDnn : ops::CpuPath::Im2colBlas);
      results[k] = {ops::conv2d_forward(x, w, Tensor(), opt).to_vector<float>(),
                    ops::conv2d_backward_data(gy, w, x.shape(), opt).to_vector<float>(),
                    ops::conv2d_backward_weight(gy, x, w.shape(), opt).to_vector<float>()};
    }
    ops::set_cpu_path(ops::CpuPath::OneDnn);
    for (int pass = 0; pass < 3; ++pass)
      for (size_t i = 0; i < results[0][pass].size(); ++i)
        ASSERT_NEAR(results[0][pass][i], results[1][pass][i], 2e-4) << "pass " << pass << " element " << i;
  }
}

TEST(Reference, MatmulMatchesPlainLoops) {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      int64_t M = 5, K = 7, N = 3;
      Tensor a = ta ? rnd({K, M}, 10) : rnd({M, K}, 10);
      Tensor b = tb ? rnd({N, K}, 11) : rnd({K, N}, 11);
      std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
      std::vector<double> got = ops::matmul(a, b, ta, tb).to_vector<double>();
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += (ta ? av[k * M + i] : av[i * K + k]) * (tb ? bv[j * K + k] : bv[k * N + j]);
          EXPECT_NEAR(got[i * N + j], acc, 1e-12);
        }
    }
}

TEST(Reference, HighpassMaskZeroes193At32x32Radius8) {
  Tensor m = ops::highpass_mask(32, 32, 8);
  int zeros = 0;
  for (uint8_t v : m.to_vector<uint8_t>()) zeros += v == 0;
  EXPECT_EQ(zeros, 193);
  EXPECT_EQ(m.data<uint8_t>()[16 * 32 + 16], 0);  // the centre (zero frequency) is removed
}

TEST(Reference, HighpassRemovesConstantsAndKeepsHighFrequencies) {
  // A constant image is all zero frequency: its high-pass is 0.
  Tensor c = Tensor::full({1, 1, 32, 32}, 0.7, DType::Float64);
  for (double v : ops::fft_highpass(c, 8).to_vector<double>()) EXPECT_NEAR(v, 0.0, 1e-12);
  // A checkerboard is the highest frequency (16, 16): it passes unchanged.
  std::vector<double> cb(32 * 32);
  for (int i = 0; i < 32; ++i)
    for (int j = 0; j < 32; ++j) cb[i * 32 + j] = ((i + j) % 2) ? 1.0 : -1.0;
  Tensor x = Tensor::from_vector<double>(cb, {1, 1, 32, 32});
  std::vector<double> y = ops::fft_highpass(x, 8).to_vector<double>();
  for (size_t i = 0; i < cb.size(); ++i) EXPECT_NEAR(y[i], cb[i], 1e-12);
}

TEST(Reference, BatchNormRunningStatisticsUseUnbiasedVariance) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 6}, {4, 1});
  Tensor rm = Tensor::zeros({1}, DType::Float64), rv = Tensor::ones({1}, DType::Float64);
  ops::batch_norm(x, Tensor(), Tensor(), rm, rv, {true, 0.1, 1e-5});
  // mean 3, biased var 3.5, unbiased 14/3
  EXPECT_NEAR(rm.item(), 0.3, 1e-15);
  EXPECT_NEAR(rv.item(), 0.9 + 0.1 * 14.0 / 3.0, 1e-15);
}
