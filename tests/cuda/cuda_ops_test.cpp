// GPU tests: every CUDA op against its CPU twin on random data (forward and
// gradients), the runtime (copies, allocator), and the RNG on the device
// against the host bit for bit. They skip (GTEST_SKIP) in a build without
// CUDA or on a machine without a GPU, so the CPU build compiles and lists them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "cuda/runtime.h"
#include "cuda/settings.h"
#include "engine/ops.h"
#if ADVCL_CUDA
#include "engine/rng_device_probe.h"
#endif
#include "tests/cuda/gpu_test_util.h"

using namespace advcl;

namespace {

using gpu_test::kGpu;
using gpu_test::max_rel_diff;

Tensor randn(const Shape& s, uint32_t sample, DType dt = DType::Float64) {
  return gpu_test::randn(s, 7, sample, dt);
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs f on `inputs` on the CPU and on the GPU; compares the outputs and the
// gradients of sum(out * r) (r random) with respect to the inputs marked in
// `diff`, each within `tol` (relative). TF32 is off meanwhile: float32
// tolerances hold the GPU to the CPU's full float32 precision.
void compare(const char* what, const Fn& f, const std::vector<Tensor>& inputs, const std::vector<bool>& diff,
             double tol) {
  SCOPED_TRACE(what);
  cuda::Tf32Scope fp32(false);
  std::vector<Tensor> cpu, gpu, cpu_leaves, gpu_leaves;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor c = inputs[i].clone(), g = inputs[i].to(kGpu);
    if (diff[i]) {
      c.set_requires_grad();
      g.set_requires_grad();
      cpu_leaves.push_back(c);
      gpu_leaves.push_back(g);
    }
    cpu.push_back(c);
    gpu.push_back(g);
  }
  Tensor yc = f(cpu), yg = f(gpu);
  ASSERT_TRUE(yg.device().is_cuda());
  EXPECT_LE(max_rel_diff(yg, yc), tol) << "forward";
  if (cpu_leaves.empty()) return;
  Tensor r = randn(yc.shape(), 999, yc.dtype());
  auto gc = grad(ops::sum(ops::mul(yc, r)), cpu_leaves);
  auto gg = grad(ops::sum(ops::mul(yg, r.to(kGpu))), gpu_leaves);
  for (size_t i = 0; i < gc.size(); ++i) EXPECT_LE(max_rel_diff(gg[i], gc[i]), tol) << "gradient of input " << i;
}

Tensor positive(const Tensor& x) { return ops::add(ops::abs(x), 0.1); }

}  // namespace

TEST(CudaRuntime, DeviceCountIsZeroWithoutCuda) {
  if (!cuda_built()) {
    EXPECT_EQ(cuda::device_count(), 0);
    try {
      cuda::device_alloc(16, 0);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("make CUDA=1"), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(cuda::device_count(), 0);
}

// Deterministic cuDNN algorithms and TF32 tensor cores by default (as
// PyTorch's cuDNN convolutions); Tf32Scope sets TF32 for a scope only.
TEST(CudaRuntime, SettingsDefaultToDeterministicTf32) {
  EXPECT_TRUE(cuda::deterministic());
  EXPECT_TRUE(cuda::allow_tf32());
  {
    cuda::Tf32Scope fp32(false);
    EXPECT_FALSE(cuda::allow_tf32());
    {
      cuda::Tf32Scope tf32(true);
      EXPECT_TRUE(cuda::allow_tf32());
    }
    EXPECT_FALSE(cuda::allow_tf32());
  }
  EXPECT_TRUE(cuda::allow_tf32());
}

TEST(CudaRuntime, CopiesRoundTripAndZeros) {
  REQUIRE_GPU();
  std::string desc = cuda::device_description(0);
  EXPECT_FALSE(desc.empty());
  Tensor a = randn({3, 1000}, 1, DType::Float32);
  Tensor g = a.to(kGpu);
  EXPECT_EQ(g.to(Device::cpu()).to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(g.clone().to(Device::cpu()).to_vector<float>(), a.to_vector<float>());  // device to device
  Tensor z = Tensor::zeros({4097}, DType::Float64, kGpu);
  for (double v : z.to_vector<double>()) ASSERT_EQ(v, 0.0);
}

// Tensor::to(DType) on the device (a launch of kernels::convert_element)
// gives the CPU's bytes for every pair of dtypes. Values in [0, 250) with
// fractions: in range for every integer type (out-of-range float-to-integer
// casts are undefined behaviour on both sides), and bfloat16 rounding is hit.
TEST(CudaRuntime, DtypeConversionEqualsTheCpuBitForBit) {
  REQUIRE_GPU();
  const DType all[] = {DType::Float32, DType::Float64, DType::BFloat16, DType::Int32, DType::Int64, DType::UInt8};
  Tensor base = ops::rand_uniform({3, 337}, RngKey{42, static_cast<uint32_t>(RngPurpose::Test), 8, 0}, 0, 250,
                                  DType::Float64);
  for (DType from : all) {
    Tensor src = base.to(from);
    Tensor src_gpu = src.to(kGpu);
    for (DType to : all) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + dtype_name(to));
      Tensor want = src.to(to), got = src_gpu.to(to);
      ASSERT_TRUE(got.device().is_cuda());
      ASSERT_EQ(got.dtype(), to);
      Tensor back = got.to(Device::cpu());
      ASSERT_EQ(back.nbytes(), want.nbytes());
      EXPECT_EQ(std::memcmp(back.raw_data(), want.raw_data(), want.nbytes()), 0);
    }
  }
}

TEST(CudaRuntime, TensorsGoThroughTheCachingAllocator) {
  REQUIRE_GPU();
  cuda::empty_cache();
  auto before = cuda::memory_stats(0);
  {
    Tensor t = Tensor::empty({1000}, DType::Float32, kGpu);
    auto s = cuda::memory_stats(0);
    EXPECT_EQ(s.allocations, before.allocations + 1);
    EXPECT_GE(s.allocated, before.allocated + 4000);
  }
  auto after_free = cuda::memory_stats(0);
  EXPECT_EQ(after_free.allocated, before.allocated);
  // Same size again: served from the cache (unless ADVCL_CUDA_NO_CACHE=1
  // turned it off, as gpu_check.sh's sanitize stage does).
  { Tensor t = Tensor::empty({1000}, DType::Float32, kGpu); }
  if (after_free.caching) {
    EXPECT_EQ(cuda::memory_stats(0).raw_allocs, after_free.raw_allocs);
  }
  cuda::empty_cache();
  EXPECT_LE(cuda::memory_stats(0).reserved, after_free.reserved);
  EXPECT_NE(cuda::memory_summary(0).find("allocated"), std::string::npos);
}

TEST(CudaRng, DeviceWordsMatchHostBitForBit) {
  REQUIRE_GPU();
#if ADVCL_CUDA
  for (RngKey key : {RngKey{0, 0, 0, 0}, RngKey{0x123456789abcdefull, 3, 17, 99}, RngKey{~0ull, 100, ~0u, ~0u}}) {
    std::vector<uint32_t> dev = cuda::rng_words_on_device(key, 1ull << 33, 4099);
    for (int64_t i = 0; i < 4099; ++i)
      ASSERT_EQ(dev[i], key.word((1ull << 33) + static_cast<uint64_t>(i))) << "word " << i;
  }
#endif
}

TEST(CudaRng, RandomOpsMatchCpu) {
  REQUIRE_GPU();
  RngKey key{2024, static_cast<uint32_t>(RngPurpose::Augment), 5, 10};
  for (DType dt : {DType::Float32, DType::Float64}) {
    EXPECT_EQ(max_rel_diff(ops::rand_uniform({64, 33}, key, 0, 1, dt, kGpu), ops::rand_uniform({64, 33}, key, 0, 1, dt)),
              0.0);
    // lo + (hi - lo) * u: nvcc fuses the multiply-add (one rounding), g++ for
    // x86-64 does not (two), so other ranges agree to the last bit only.
    EXPECT_LE(max_rel_diff(ops::rand_uniform({64, 33}, key, -2, 3, dt, kGpu), ops::rand_uniform({64, 33}, key, -2, 3, dt)),
              dt == DType::Float64 ? 1e-15 : 1e-6);
    EXPECT_EQ(max_rel_diff(ops::rand_bernoulli({64, 33}, key, 0.3, dt, kGpu), ops::rand_bernoulli({64, 33}, key, 0.3, dt)),
              0.0);
    // Box-Muller goes through log and cos, which may differ in the last bit.
    EXPECT_LE(max_rel_diff(ops::rand_normal({64, 33}, key, 1, 2, dt, kGpu), ops::rand_normal({64, 33}, key, 1, 2, dt)),
              dt == DType::Float64 ? 1e-13 : 1e-6);
  }
  EXPECT_EQ(ops::rand_int({100, 7}, key, -5, 1000, kGpu).to_vector<int64_t>(),
            ops::rand_int({100, 7}, key, -5, 1000).to_vector<int64_t>());
}

TEST(CudaOps, ElementwiseBinaryWithBroadcasting) {
  REQUIRE_GPU();
  Tensor a = randn({4, 1, 5}, 1), b = randn({3, 1}, 2);
  const std::vector<bool> both{true, true};
  compare("add", [](auto& v) { return ops::add(v[0], v[1]); }, {a, b}, both, 1e-12);
  compare("sub", [](auto& v) { return ops::sub(v[0], v[1]); }, {a, b}, both, 1e-12);
  compare("mul", [](auto& v) { return ops::mul(v[0], v[1]); }, {a, b}, both, 1e-12);
  compare("div", [](auto& v) { return ops::div(v[0], positive(v[1])); }, {a, b}, both, 1e-12);
  compare("minimum", [](auto& v) { return ops::minimum(v[0], v[1]); }, {a, b}, both, 1e-12);
  compare("maximum", [](auto& v) { return ops::maximum(v[0], v[1]); }, {a, b}, both, 1e-12);
  // Same shapes take the plain (no index arithmetic) kernels.
  compare("div same shape", [](auto& v) { return ops::div(v[0], positive(v[1])); }, {randn({7, 300}, 40), randn({7, 300}, 41)},
          both, 1e-12);
  // Gradients summed over many rows take sum_to's block-per-output path.
  compare("add (long sum_to)", [](auto& v) { return ops::add(v[0], v[1]); }, {randn({300, 70}, 3), randn({70}, 4)},
          both, 1e-12);
  compare("mul float", [](auto& v) { return ops::mul(v[0], v[1]); },
          {randn({300, 70}, 3, DType::Float32), randn({1, 70}, 4, DType::Float32)}, both, 1e-4);
}

TEST(CudaOps, ElementwiseUnary) {
  REQUIRE_GPU();
  Tensor x = randn({7, 300}, 5);
  const std::vector<bool> d{true};
  compare("neg", [](auto& v) { return ops::neg(v[0]); }, {x}, d, 1e-12);
  compare("exp", [](auto& v) { return ops::exp(v[0]); }, {x}, d, 1e-12);
  compare("log", [](auto& v) { return ops::log(positive(v[0])); }, {x}, d, 1e-12);
  compare("sqrt", [](auto& v) { return ops::sqrt(positive(v[0])); }, {x}, d, 1e-12);
  compare("abs", [](auto& v) { return ops::abs(v[0]); }, {x}, d, 1e-12);
  compare("sign", [](auto& v) { return ops::sign(v[0]); }, {x}, d, 0);
  compare("relu", [](auto& v) { return ops::relu(v[0]); }, {x}, d, 0);
  compare("clamp", [](auto& v) { return ops::clamp(v[0], -0.5, 0.7); }, {x}, d, 0);
  compare("scalars", [](auto& v) { return ops::rsub(ops::div(ops::mul(ops::add(v[0], 2.0), 3.0), 4.0), 1.0); }, {x}, d,
          1e-12);
  compare("pow", [](auto& v) { return ops::pow(positive(v[0]), 2.5); }, {x}, d, 1e-12);
  compare("exp float", [](auto& v) { return ops::exp(v[0]); }, {randn({1000}, 6, DType::Float32)}, d, 1e-6);
}

TEST(CudaOps, Reductions) {
  REQUIRE_GPU();
  Tensor x = randn({6, 50, 9}, 7);
  const std::vector<bool> d{true};
  compare("sum dim 1", [](auto& v) { return ops::sum(v[0], 1); }, {x}, d, 1e-12);
  compare("mean dim 2", [](auto& v) { return ops::mean(v[0], 2, true); }, {x}, d, 1e-12);
  compare("max dim 1", [](auto& v) { return ops::max(v[0], 1); }, {x}, d, 0);
  compare("min dim 0", [](auto& v) { return ops::min(v[0], 0); }, {x}, d, 0);
  compare("sum all (block path)", [](auto& v) { return ops::sum(v[0]); }, {randn({5000}, 8)}, d, 1e-12);
  compare("mean all float", [](auto& v) { return ops::mean(v[0]); }, {randn({3000}, 9, DType::Float32)}, d, 1e-6);
  compare("topk", [](auto& v) { return ops::topk(v[0], 3).values; }, {randn({20, 10}, 10)}, d, 0);
  compare("l2_normalize", [](auto& v) { return ops::l2_normalize(v[0]); }, {randn({20, 33}, 11)}, d, 1e-12);
  Tensor xs = randn({9, 4}, 12);
  EXPECT_EQ(ops::argmax(xs.to(kGpu), 1).to_vector<int64_t>(), ops::argmax(xs, 1).to_vector<int64_t>());
}

TEST(CudaOps, SoftmaxAndLosses) {
  REQUIRE_GPU();
  Tensor x = randn({16, 10}, 13);
  const std::vector<bool> d{true};
  compare("softmax", [](auto& v) { return ops::softmax(v[0]); }, {x}, d, 1e-12);
  compare("log_softmax", [](auto& v) { return ops::log_softmax(v[0]); }, {x}, d, 1e-12);
  Tensor labels = Tensor::from_vector<int64_t>({0, 3, 9, -1, 2, 2, 5, 1, 0, 7, 8, 4, 6, 3, -1, 9}, {16});
  compare("cross_entropy",
          [labels](auto& v) { return ops::cross_entropy(v[0], labels.to(v[0].device())); }, {x}, d, 1e-12);
  compare("kl_div",
          [](auto& v) { return ops::kl_div(ops::log_softmax(v[0]), ops::softmax(v[1]), ops::KLReduction::BatchMean); },
          {x, randn({16, 10}, 14)}, {true, true}, 1e-12);
}

TEST(CudaOps, BatchNorm) {
  REQUIRE_GPU();
  Tensor x = randn({8, 3, 5, 5}, 15), w = randn({3}, 16), b = randn({3}, 17);
  for (bool training : {true, false}) {
    ops::BatchNormOptions opt;
    opt.training = training;
    compare(training ? "batch_norm train" : "batch_norm eval",
            [opt](auto& v) {
              Tensor rm = Tensor::full({3}, 0.1, DType::Float64, v[0].device());
              Tensor rv = Tensor::full({3}, 2.0, DType::Float64, v[0].device());
              return ops::batch_norm(v[0], v[1], v[2], rm, rv, opt);
            },
            {x, w, b}, {true, true, true}, 1e-10);
  }
}

// Channels-last activations (engine/ops/layout.h) on the GPU: the copies,
// batch norm's channels-last indexing, and conv2d's transposing path.
TEST(CudaOps, ChannelsLast) {
  REQUIRE_GPU();
  compare("to_channels_last", [](auto& v) { return ops::to_channels_last(v[0]); }, {randn({3, 40, 5, 7}, 62)}, {true},
          0);
  compare("to_channels_first", [](auto& v) { return ops::to_channels_first(v[0]); }, {randn({3, 5, 7, 40}, 63)},
          {true}, 0);
  for (bool training : {true, false}) {
    ops::BatchNormOptions opt;
    opt.training = training;
    opt.channels_last = true;
    compare(training ? "batch_norm channels-last train" : "batch_norm channels-last eval",
            [opt](auto& v) {
              Tensor rm = Tensor::full({3}, 0.1, DType::Float64, v[0].device());
              Tensor rv = Tensor::full({3}, 2.0, DType::Float64, v[0].device());
              return ops::batch_norm(v[0], v[1], v[2], rm, rv, opt);
            },
            {randn({8, 5, 5, 3}, 64), randn({3}, 65), randn({3}, 66)}, {true, true, true}, 1e-10);
  }
  for (bool training : {true, false}) {
    ops::BatchNormOptions opt;
    opt.training = training;
    opt.relu = true;
    compare("batch_norm + relu",
            [opt](auto& v) {
              Tensor rm = Tensor::full({3}, 0.1, DType::Float64, v[0].device());
              Tensor rv = Tensor::full({3}, 2.0, DType::Float64, v[0].device());
              return ops::batch_norm(v[0], v[1], v[2], rm, rv, opt);
            },
            {randn({8, 3, 5, 5}, 70), randn({3}, 71), randn({3}, 72)}, {true, true, true}, 1e-10);
  }
  compare("add_relu", [](auto& v) { return ops::add_relu(v[0], v[1]); }, {randn({6, 7}, 73), randn({6, 7}, 74)},
          {true, true}, 0);
  for (DType dt : {DType::Float64, DType::Float32})
    compare("conv2d channels-last", [](auto& v) { return ops::conv2d(v[0], v[1], v[2], ops::Conv2dOptions{2, 1, true}); },
            {randn({4, 9, 9, 3}, 67, dt), randn({8, 3, 3, 3}, 68, dt), randn({8}, 69, dt)}, {true, true, true},
            dt == DType::Float64 ? 1e-10 : 1e-4);
}

TEST(CudaOps, MatmulAndLinear) {
  REQUIRE_GPU();
  const std::vector<bool> both{true, true};
  compare("matmul", [](auto& v) { return ops::matmul(v[0], v[1]); }, {randn({7, 5}, 18), randn({5, 3}, 19)}, both, 1e-12);
  compare("matmul^T", [](auto& v) { return ops::matmul(v[0], v[1], true, true); },
          {randn({5, 7}, 20), randn({3, 5}, 21)}, both, 1e-12);
  compare("linear float", [](auto& v) { return ops::linear(v[0], v[1], v[2]); },
          {randn({32, 64}, 22, DType::Float32), randn({10, 64}, 23, DType::Float32), randn({10}, 24, DType::Float32)},
          {true, true, true}, 1e-4);
}

TEST(CudaOps, Conv2d) {
  REQUIRE_GPU();
  for (DType dt : {DType::Float64, DType::Float32}) {
    for (int stride : {1, 2}) {
      ops::Conv2dOptions opt;
      opt.stride = stride;
      opt.padding = 1;
      compare("conv2d", [opt](auto& v) { return ops::conv2d(v[0], v[1], v[2], opt); },
              {randn({4, 3, 9, 9}, 25, dt), randn({8, 3, 3, 3}, 26, dt), randn({8}, 27, dt)}, {true, true, true},
              dt == DType::Float64 ? 1e-10 : 1e-4);
    }
    // ResNet's shortcut: 1x1, stride 2, no padding, no bias.
    ops::Conv2dOptions shortcut;
    shortcut.stride = 2;
    shortcut.padding = 0;
    compare("conv2d 1x1 stride 2", [shortcut](auto& v) { return ops::conv2d(v[0], v[1], Tensor(), shortcut); },
            {randn({4, 8, 8, 8}, 60, dt), randn({16, 8, 1, 1}, 61, dt)}, {true, true},
            dt == DType::Float64 ? 1e-10 : 1e-4);
  }
}

TEST(CudaOps, FftHighpass) {
  REQUIRE_GPU();
  compare("fft_highpass 8x8", [](auto& v) { return ops::fft_highpass(v[0], 2.0); }, {randn({2, 3, 8, 8}, 28)}, {true},
          1e-10);
  compare("fft_highpass 7x9", [](auto& v) { return ops::fft_highpass(v[0], 3.0); }, {randn({1, 2, 7, 9}, 29)}, {true},
          1e-10);
  compare("fft_highpass float", [](auto& v) { return ops::fft_highpass(v[0], 4.0); },
          {randn({4, 3, 32, 32}, 30, DType::Float32)}, {true}, 1e-4);
}

TEST(CudaOps, IndexSelect) {
  REQUIRE_GPU();
  Tensor idx = Tensor::from_vector<int64_t>({3, 0, 3, 1, 3}, {5});
  compare("index_select", [idx](auto& v) { return ops::index_select(v[0], idx.to(v[0].device())); },
          {randn({4, 6}, 31)}, {true}, 0);
}

TEST(CudaOps, RerunsAreBitIdentical) {
  REQUIRE_GPU();
  // Deterministic mode: a conv layer's gradients and a long reduction give the
  // same bits on every run.
  ASSERT_TRUE(cuda::deterministic());
  Tensor x = randn({16, 8, 16, 16}, 32, DType::Float32).to(kGpu).set_requires_grad();
  Tensor w = randn({16, 8, 3, 3}, 33, DType::Float32).to(kGpu).set_requires_grad();
  auto run = [&] {
    Tensor y = ops::conv2d(x, w, Tensor(), {1, 1});
    return grad(ops::sum(ops::mul(y, y)), {x, w});
  };
  auto a = run(), b = run();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(max_rel_diff(a[i], b[i]), 0.0);
}
