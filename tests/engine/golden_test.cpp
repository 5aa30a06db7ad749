// Our ops against PyTorch: tests/golden/engine_golden.safetensors holds inputs,
// outputs and gradients (for a random upstream gradient `gy`) computed by
// tests/golden/make_engine_golden.py in float64. Every output and gradient is
// compared by name.
//
// Each family runs in float64 against the references directly, and in float32
// (inputs rounded to float32, results compared with the float64 references)
// because float32 is what training uses and it takes other code paths (sgemm,
// float accumulators); both on the CPU and, when there is one, on the GPU.
//
// Tolerances: |ours - torch| <= atol * max|torch| + rtol * |torch| elementwise
// (tests/golden_util.h).
//   float64, most ops:            rtol 1e-10, atol 1e-12 (a few roundings apart)
//   float64, conv2d/matmul/BN:    rtol 1e-9,  atol 1e-12 (sums of products in a
//                                 different order from PyTorch's; BN's x
//                                 gradient is a difference of such sums)
//   float64, FFT high-pass:       rtol 1e-9,  atol 1e-12 (direct DFT sums
//                                 against PyTorch's FFT)
//   float32, all ops:             rtol 1e-4,  atol 1e-5 (float32 rounding of
//                                 inputs and accumulations, ~1e-7 each)
//   integer results (argmax, top-k indices, masks): exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "cuda/runtime.h"
#include "cuda/settings.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "tests/golden_util.h"

using namespace advcl;
using testing_util::Tolerance;

namespace {

const Tolerance kTight64{1e-10, 1e-12};
const Tolerance kSums64{1e-9, 1e-12};
const Tolerance kAll32{1e-4, 1e-5};
const Tolerance kExact{0, 0};

const testing_util::GoldenFile& golden() {
  return testing_util::GoldenFile::load("tests/golden/engine_golden.safetensors");
}
bool has(const std::string& name) { return golden().has(name); }
// A reference tensor; a missing name is an error naming it (and the file).
Tensor G(const std::string& name) { return golden().tensor(name); }

// One run of a family: where and in which dtype it computes, and the tolerance it is held to.
struct Precision {
  DType dt;
  Tolerance tol;
  Device dev = Device::cpu();
};
// float64 and float32 on the CPU, and on the first GPU when there is one.
std::vector<Precision> runs(Tolerance tol64) {
  std::vector<Precision> r = {{DType::Float64, tol64}, {DType::Float32, kAll32}};
  if (cuda::device_count() > 0) {
    r.push_back({DType::Float64, tol64, Device::cuda(0)});
    r.push_back({DType::Float32, kAll32, Device::cuda(0)});
  }
  return r;
}
// The same run, for results that must be exact (integer dtypes).
Precision exact(DType dt, const Precision& r) { return {dt, kExact, r.dev}; }

std::string tag(const std::string& name, const Precision& r) {
  return name + " (" + dtype_name(r.dt) + (r.dev.is_cpu() ? "" : ", " + r.dev.str()) + ")";
}

// A fresh copy of reference `name` in the run's dtype (floating tensors only) and device.
Tensor input(const std::string& name, const Precision& r) {
  return golden().floating_as(name, r.dt).to(r.dev);
}

// The same, as a leaf that requires a gradient.
Tensor leaf(const std::string& name, const Precision& r) {
  Tensor t = input(name, r);
  t.set_requires_grad();
  return t;
}

// Compares our `got` with reference `name`. With ADVCL_GOLDEN_REPORT=1 in the
// environment, also prints every comparison's errors (to choose tolerances).
void check(const std::string& name, const Tensor& got, const Precision& r) {
  ASSERT_TRUE(got.defined()) << tag(name, r) << ": undefined";
  EXPECT_EQ(got.dtype(), r.dt) << tag(name, r);
  EXPECT_EQ(got.device(), r.dev) << tag(name, r) << " is on " << got.device().str();
  EXPECT_TRUE(testing_util::close(tag(name, r), got, G(name), r.tol));
  static const bool report = std::getenv("ADVCL_GOLDEN_REPORT") != nullptr;
  if (report && got.shape() == G(name).shape()) {
    testing_util::Errors e = testing_util::errors(got, G(name));
    std::printf("golden %-34s max abs %.3g, / max|want| %.3g\n", tag(name, r).c_str(), e.max_abs, e.max_rel);
  }
}

// Differentiates y (with upstream G(case.gy)) w.r.t. the inputs, and compares
// each gradient with G(case.g<input name>).
void check_grads(const std::string& c, const Tensor& y, const std::vector<std::pair<std::string, Tensor>>& inputs,
                 const Precision& r) {
  std::vector<Tensor> xs;
  for (const auto& in : inputs) xs.push_back(in.second);
  std::vector<Tensor> gs = grad(y, xs, input(c + ".gy", r));
  ASSERT_EQ(gs.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) check(c + ".g" + inputs[i].first, gs[i], r);
}

// The common shape of a case: named inputs -> y, then the gradients of all of them.
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
void run_case(const std::string& c, const std::vector<std::string>& names, const Fn& fn, const Precision& r) {
  SCOPED_TRACE(tag(c, r));
  std::vector<std::pair<std::string, Tensor>> inputs;
  std::vector<Tensor> xs;
  for (const std::string& n : names) {
    inputs.emplace_back(n, leaf(c + "." + n, r));
    xs.push_back(inputs.back().second);
  }
  Tensor y = fn(xs);
  check(c + ".y", y, r);
  check_grads(c, y, inputs, r);
}

}  // namespace

// The comparison itself: a failure names the tensor and the worst element.
TEST(Golden, ComparisonNamesTensorAndIndex) {
  Tensor want = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor got = want.clone();
  EXPECT_TRUE(testing_util::close("same", got, want, kExact));
  got.data<double>()[5] = 6 + 1e-6;
  EXPECT_TRUE(testing_util::close("near", got, want, {1e-6, 0}));
  ::testing::AssertionResult r = testing_util::close("case.gx", got, want, kTight64);
  ASSERT_FALSE(r);
  std::string msg = r.message();
  for (const char* part : {"case.gx", "[1, 2]", "max abs error"})
    EXPECT_NE(msg.find(part), std::string::npos) << part << " not in: " << msg;
  EXPECT_FALSE(testing_util::close("shape", got.view({3, 2}), want, kTight64));
  Tensor nan = Tensor::full({2}, NAN, DType::Float64);
  EXPECT_TRUE(testing_util::close("nan", nan, nan, kExact));
  EXPECT_FALSE(testing_util::close("nan vs 0", nan, Tensor::zeros({2}, DType::Float64), {1, 1}));
  // Rounding noise around a tensor that is zero as a whole: only an absolute floor accepts it.
  Tensor noise = Tensor::from_vector<double>({1e-16, -2e-17}, {2});
  Tensor other = Tensor::from_vector<double>({-3e-16, 5e-17}, {2});
  EXPECT_FALSE(testing_util::close("noise", other, noise, {1e-6, 1e-6}));
  EXPECT_TRUE(testing_util::close("noise", other, noise, {1e-6, 1e-6, 1e-12}));
}

TEST(Golden, FileLoadsAndHasEveryFamily) {
  for (const char* name : {"conv2d.s2p1.x", "bn.nchw.train.running_var_out", "add.nchw_c.ga", "relu.edge.gx",
                           "topk.k3.indices", "matmul.ffT.gf", "kl.batchmean.gtarget", "index_select.gx",
                           "fft.32.mask"})
    EXPECT_TRUE(has(name)) << name;
}

// The one loader of the golden files: failures name the file and what it
// lacked, reads are copies, and conversions keep integer tensors as they are.
TEST(Golden, LoaderNamesFileAndTensorAndGivesCopies) {
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string msg = message([] { golden().tensor("no.such.tensor"); });
  for (const char* part : {"engine_golden.safetensors", "no tensor 'no.such.tensor'", "make_engine_golden.py"})
    EXPECT_NE(msg.find(part), std::string::npos) << part << " not in: " << msg;
  msg = message([] { golden().metadata("no_such_key"); });
  EXPECT_NE(msg.find("no metadata 'no_such_key'"), std::string::npos) << msg;
  msg = message([] { testing_util::GoldenFile::load("tests/golden/no_such_golden.safetensors"); });
  EXPECT_NE(msg.find("no_such_golden.safetensors"), std::string::npos) << msg;

  Tensor x = G("conv2d.s1p0.x");
  ASSERT_EQ(x.dtype(), DType::Float64);
  const double first = x.to_vector<double>()[0];
  x.data<double>()[0] = first + 1;  // a test's change in place ...
  EXPECT_EQ(G("conv2d.s1p0.x").to_vector<double>()[0], first);  // ... is not what the next read sees
  EXPECT_EQ(golden().tensor("conv2d.s1p0.x", DType::Float32).dtype(), DType::Float32);
  EXPECT_EQ(golden().floating_as("conv2d.s1p0.x", DType::Float32).dtype(), DType::Float32);
  EXPECT_EQ(golden().floating_as("topk.k3.indices", DType::Float32).dtype(), G("topk.k3.indices").dtype());
  EXPECT_FALSE(golden().with_prefix("conv2d.s1p0.").empty());
  EXPECT_TRUE(golden().with_prefix("conv2d.s1p0.").count("x"));
}

TEST(Golden, Conv2d) {
  cuda::Tf32Scope fp32(false);  // the GPU's float32 runs are held to float32 tolerances
  struct C {
    const char* name;
    int stride, padding;
  };
  for (C c : {C{"s1p0", 1, 0}, C{"s1p1", 1, 1}, C{"s2p0", 2, 0}, C{"s2p1", 2, 1}, C{"s2p1odd", 2, 1},
              C{"k1s1", 1, 0}, C{"k1s2", 2, 0}}) {
    std::string k = std::string("conv2d.") + c.name;
    std::vector<std::string> names = {"x", "w"};
    if (has(k + ".b")) names.push_back("b");
    for (const Precision& r : runs(kSums64))
      run_case(k, names, [&](const std::vector<Tensor>& in) {
        return ops::conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), {c.stride, c.padding});
      }, r);
  }
}

TEST(Golden, BatchNorm) {
  for (const char* shape : {"nchw", "nc"})
    for (bool training : {true, false})
      for (const Precision& r : runs(kSums64)) {
        std::string k = std::string("bn.") + shape + (training ? ".train" : ".eval");
        SCOPED_TRACE(tag(k, r));
        Tensor rm = input(k + ".running_mean", r), rv = input(k + ".running_var", r);
        Tensor x = leaf(k + ".x", r), w = leaf(k + ".w", r), b = leaf(k + ".b", r);
        Tensor y = ops::batch_norm(x, w, b, rm, rv, {training, 0.1, 1e-5});
        check(k + ".y", y, r);
        if (training) {
          check(k + ".running_mean_out", rm, r);
          check(k + ".running_var_out", rv, r);
        } else {  // eval leaves the statistics alone
          check(k + ".running_mean", rm, r);
          check(k + ".running_var", rv, r);
        }
        check_grads(k, y, {{"x", x}, {"w", w}, {"b", b}}, r);
      }
}

TEST(Golden, ElementwiseBinaryBroadcasting) {
  using Bin = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<std::string, Bin>> ops_ = {
      {"add", ops::add}, {"sub", ops::sub}, {"mul", ops::mul}, {"div", ops::div},
      {"minimum", ops::minimum}, {"maximum", ops::maximum}};
  for (const auto& [op, fn] : ops_)
    for (const char* shapes : {"nchw_c", "nc_c", "same", "c_nc", "t0d"})
      for (const Precision& r : runs(kTight64))
        run_case(op + "." + shapes, {"a", "b"}, [fn = fn](const std::vector<Tensor>& in) { return fn(in[0], in[1]); },
                 r);
}

// PyTorch splits the gradient of minimum/maximum equally between tied inputs.
TEST(Golden, MinimumMaximumTies) {
  for (const Precision& r : runs(kTight64)) {
    run_case("minimum.ties", {"a", "b"}, [](const std::vector<Tensor>& in) { return ops::minimum(in[0], in[1]); }, r);
    run_case("maximum.ties", {"a", "b"}, [](const std::vector<Tensor>& in) { return ops::maximum(in[0], in[1]); }, r);
  }
}

TEST(Golden, ElementwiseScalar) {
  // The scalars are those of make_engine_golden.py's SCALAR table.
  const std::vector<std::pair<std::string, Fn>> cases = {
      {"add.scalar", [](const std::vector<Tensor>& in) { return ops::add(in[0], 1.75); }},
      {"sub.scalar", [](const std::vector<Tensor>& in) { return in[0] - 0.625; }},
      {"rsub.scalar", [](const std::vector<Tensor>& in) { return ops::rsub(in[0], 2.5); }},
      {"mul.scalar", [](const std::vector<Tensor>& in) { return ops::mul(in[0], -1.5); }},
      {"div.scalar", [](const std::vector<Tensor>& in) { return ops::div(in[0], -0.4); }},
  };
  for (const auto& [c, fn] : cases)
    for (const Precision& r : runs(kTight64)) run_case(c, {"x"}, fn, r);
}

TEST(Golden, ElementwiseUnary) {
  auto u = [](Tensor (*f)(const Tensor&)) { return Fn([f](const std::vector<Tensor>& in) { return f(in[0]); }); };
  auto p = [](double e) { return Fn([e](const std::vector<Tensor>& in) { return ops::pow(in[0], e); }); };
  Fn clamp = [](const std::vector<Tensor>& in) { return ops::clamp(in[0], -0.5, 0.75); };
  const std::vector<std::pair<std::string, Fn>> cases = {
      {"neg.x34", u(ops::neg)},   {"exp.x34", u(ops::exp)},   {"log.x34", u(ops::log)},
      {"sqrt.x34", u(ops::sqrt)}, {"abs.x34", u(ops::abs)},   {"sign.x34", u(ops::sign)},
      {"relu.x34", u(ops::relu)}, {"clamp.x34", clamp},       {"pow2.x34", p(2)},
      {"pow3.x34", p(3)},         {"powhalf.x34", p(0.5)},    {"pow-1.x34", p(-1)},
      {"pow1.5.x34", p(1.5)},
      // Exactly at the kinks: derivative 0 for relu(0), abs(0), sign. (No clamp.edge: PyTorch's
      // subgradient at clamp's bounds depends on its version; see make_engine_golden.py.)
      {"relu.edge", u(ops::relu)}, {"abs.edge", u(ops::abs)}, {"sign.edge", u(ops::sign)},
  };
  for (const auto& [c, fn] : cases)
    for (const Precision& r : runs(kTight64)) run_case(c, {"x"}, fn, r);
}

TEST(Golden, Reductions) {
  using V = const std::vector<Tensor>&;
  const std::vector<std::pair<std::string, Fn>> cases = {
      {"sum.d1", [](V in) { return ops::sum(in[0], 1); }},
      {"sum.d0k", [](V in) { return ops::sum(in[0], 0, true); }},
      {"sum.dm1", [](V in) { return ops::sum(in[0], -1); }},
      {"sum.all", [](V in) { return ops::sum(in[0]); }},
      {"mean.d1", [](V in) { return ops::mean(in[0], 1); }},
      {"mean.d2k", [](V in) { return ops::mean(in[0], 2, true); }},
      {"mean.all", [](V in) { return ops::mean(in[0]); }},
      {"max.d1", [](V in) { return ops::max(in[0], 1); }},
      {"max.d2k", [](V in) { return ops::max(in[0], 2, true); }},
      {"min.d1", [](V in) { return ops::min(in[0], 1); }},
      {"min.d0", [](V in) { return ops::min(in[0], 0); }},
      {"gap", [](V in) { return ops::global_avg_pool(in[0]); }},
      {"l2norm", [](V in) { return ops::l2_normalize(in[0]); }},
  };
  for (const auto& [c, fn] : cases)
    for (const Precision& r : runs(kTight64)) run_case(c, {"x"}, fn, r);
}

TEST(Golden, ArgmaxAndTopK) {
  for (const Precision& r : runs(kTight64)) {
    check("argmax.d1.y", ops::argmax(input("argmax.d1.x", r), 1), exact(DType::Int64, r));
    check("argmax.dm1k.y", ops::argmax(input("argmax.dm1k.x", r), -1, true), exact(DType::Int64, r));
    for (auto [c, k] : {std::pair<std::string, int64_t>{"topk.k3", 3}, {"topk.k1", 1}, {"topk.kall", 7}}) {
      SCOPED_TRACE(tag(c, r));
      Tensor x = leaf(c + ".x", r);
      ops::TopK t = ops::topk(x, k);
      check(c + ".values", t.values, r);
      check(c + ".indices", t.indices, exact(DType::Int64, r));
      check_grads(c, t.values, {{"x", x}}, r);
    }
  }
}

TEST(Golden, MatmulAndLinear) {
  cuda::Tf32Scope fp32(false);  // the GPU's float32 runs are held to float32 tolerances
  using V = const std::vector<Tensor>&;
  for (const Precision& r : runs(kSums64)) {
    run_case("matmul.nn", {"a", "b"}, [](V in) { return ops::matmul(in[0], in[1]); }, r);
    run_case("matmul.tn", {"a", "b"}, [](V in) { return ops::matmul(in[0], in[1], true, false); }, r);
    run_case("matmul.nt", {"a", "b"}, [](V in) { return ops::matmul(in[0], in[1], false, true); }, r);
    run_case("matmul.tt", {"a", "b"}, [](V in) { return ops::matmul(in[0], in[1], true, true); }, r);
    // f fᵀ with one tensor on both sides: its gradient is the sum over both paths.
    run_case("matmul.ffT", {"f"}, [](V in) { return ops::matmul(in[0], in[0], false, true); }, r);
    run_case("linear.bias", {"x", "w", "b"}, [](V in) { return ops::linear(in[0], in[1], in[2]); }, r);
    run_case("linear.nobias", {"x", "w"}, [](V in) { return ops::linear(in[0], in[1]); }, r);
  }
}

TEST(Golden, SoftmaxAndLosses) {
  using V = const std::vector<Tensor>&;
  for (const Precision& r : runs(kTight64)) {
    // One row of the logits is offset by +300: exp() overflows unless the row maximum is subtracted.
    run_case("softmax", {"x"}, [](V in) { return ops::softmax(in[0]); }, r);
    run_case("log_softmax", {"x"}, [](V in) { return ops::log_softmax(in[0]); }, r);
    // Labels hold -1 (ignored) twice.
    for (auto [c, red] : {std::pair<std::string, ops::Reduction>{"ce.sum", ops::Reduction::Sum},
                          {"ce.mean", ops::Reduction::Mean}}) {
      Tensor labels = input(c + ".labels", r);
      run_case(c, {"x"}, [&, red = red](V in) { return ops::cross_entropy(in[0], labels, red, -1); }, r);
    }
    for (auto [c, red] : {std::pair<std::string, ops::KLReduction>{"kl.sum", ops::KLReduction::Sum},
                          {"kl.batchmean", ops::KLReduction::BatchMean},
                          {"kl.mean", ops::KLReduction::Mean}})
      run_case(c, {"input", "target"}, [red = red](V in) { return ops::kl_div(in[0], in[1], red); }, r);
    // Zeros in the target: they add 0 to the loss (the target's gradient there is -inf; only the input's is compared).
    {
      SCOPED_TRACE(tag("kl.zeros", r));
      Tensor in = leaf("kl.zeros.input", r);
      Tensor tg = input("kl.zeros.target", r);
      Tensor y = ops::kl_div(in, tg, ops::KLReduction::Sum);
      check("kl.zeros.y", y, r);
      check_grads("kl.zeros", y, {{"input", in}}, r);
    }
  }
}

TEST(Golden, ShapeOps) {
  using V = const std::vector<Tensor>&;
  for (const Precision& r : runs(kTight64)) {
    run_case("cat", {"a", "b", "c"}, [](V in) { return ops::cat({in[0], in[1], in[2]}); }, r);
    run_case("slice", {"x"}, [](V in) { return ops::slice(in[0], 1, 4); }, r);
    run_case("reshape", {"x"}, [](V in) { return ops::reshape(in[0], {4, -1}); }, r);
    run_case("flatten", {"x"}, [](V in) { return ops::flatten(in[0]); }, r);
    // A repeated index: that row's gradient accumulates.
    Tensor idx = input("index_select.indices", r);
    run_case("index_select", {"x"}, [&](V in) { return ops::index_select(in[0], idx); }, r);
  }
}

TEST(Golden, FftHighpass) {
  struct C {
    const char* name;
    double radius;
  };
  for (C c : {C{"fft.32", 8.0}, C{"fft.12x10", 3.0}, C{"fft.11x9", 3.0}}) {
    const std::string k = c.name;
    Tensor x_u8 = G(k + ".x_u8"), gy_u8 = G(k + ".gy_u8");
    Tensor mask = ops::highpass_mask(x_u8.size(2), x_u8.size(3), c.radius);
    check(k + ".mask", mask, Precision{DType::UInt8, kExact});  // a CPU tensor in every build
    // The stored bytes give x = x_u8 / 255 and gy = (gy_u8 - 128) / 32, as in the generator.
    std::vector<double> xv = x_u8.to(DType::Float64).to_vector<double>();
    std::vector<double> gv = gy_u8.to(DType::Float64).to_vector<double>();
    for (double& v : xv) v /= 255;
    for (double& v : gv) v = (v - 128) / 32;
    for (const Precision& r : runs(kSums64)) {
      SCOPED_TRACE(tag(k, r));
      Tensor x = Tensor::from_vector(xv, x_u8.shape()).to(r.dt).to(r.dev);
      x.set_requires_grad();
      Tensor gy = Tensor::from_vector(gv, gy_u8.shape()).to(r.dt).to(r.dev);
      Tensor y = ops::fft_highpass(x, c.radius);
      check(k + ".y", y, r);
      std::vector<Tensor> gx = grad(y, {x}, gy);
      check(k + ".gx", gx.at(0), r);
    }
  }
  // docs/method.md section 8: r = 8 on 32x32 zeroes 193 of the 1,024 frequencies.
  std::vector<uint8_t> m = G("fft.32.mask").to_vector<uint8_t>();
  EXPECT_EQ(std::count(m.begin(), m.end(), 0), 193);
}
