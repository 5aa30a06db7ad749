// Timings of the engine's heavy ops at ResNet-18 (CIFAR) shapes. Prints one
// JSON object per line: {"name": ..., "ms": ...} (median of the runs).
// Run through bench/run.py, which times PyTorch on the same shapes and threads
// (or, with --device cuda, on the same GPU).
//   advcl_bench [--threads N] [--batch B] [--repeat R] [--only SUBSTRING] [--matmul-path onednn|blas]
//               [--device cpu|cuda[:N]] [--tf32 on|off] [--deterministic on|off] [--precision fp32|bf16]
// --only times just the ops whose name contains SUBSTRING; --matmul-path picks
// the library of float32 matrix products on the CPU (blas, the engine's
// default, or onednn); --tf32 and --deterministic are the GPU settings of
// cuda/settings.h; --precision bf16 times the ops under autocast (bf16
// convolutions and matmuls with float32 sums, engine/autocast.h; CPU only).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cuda/runtime.h"
#include "cuda/settings.h"
#include "engine/autocast.h"
#include "engine/ops.h"
#include "engine/parallel.h"

using namespace advcl;

namespace {

// On a GPU the work is queued: time until the stream has finished it.
bool g_on_gpu = false;
void wait_for_device() {
  if (g_on_gpu) cuda::synchronize();
}

double median_ms(const std::function<void()>& f, int repeat) {
  f();  // warm-up (on a GPU: handles, cuDNN's algorithm choice, the allocator's cache)
  wait_for_device();
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) {
    auto a = std::chrono::steady_clock::now();
    f();
    wait_for_device();
    auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::milli>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void report(const std::string& name, double ms) {
  std::printf("{\"name\": \"%s\", \"ms\": %.3f}\n", name.c_str(), ms);
  std::fflush(stdout);
}

struct ConvCase {
  const char* name;
  int64_t cin, cout, hw, k, stride, pad;
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, repeat = 5;
  int64_t batch = 128;
  std::string only;
  Device device = Device::cpu();
  bool bf16 = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "advcl_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") threads = std::atoi(next());
    else if (a == "--batch") batch = std::atoll(next());
    else if (a == "--repeat") repeat = std::atoi(next());
    else if (a == "--only") only = next();
    else if (a == "--matmul-path") {
      std::string p = next();
      if (p != "onednn" && p != "blas") {
        std::fprintf(stderr, "advcl_bench: --matmul-path must be onednn or blas, not %s\n", p.c_str());
        return 2;
      }
      ops::set_matmul_cpu_path(p == "blas" ? ops::MatmulCpuPath::Blas : ops::MatmulCpuPath::OneDnn);
    } else if (a == "--device") {
      try {
        device = Device::parse(next());
        if (device.is_cuda()) cuda::set_current_device(device.index);  // where kernels run
      } catch (const std::exception& e) {
        std::fprintf(stderr, "advcl_bench: --device: %s\n", e.what());
        return 2;
      }
    } else if (a == "--precision") {
      std::string p = next();
      if (p != "fp32" && p != "bf16") {
        std::fprintf(stderr, "advcl_bench: --precision must be fp32 or bf16, not %s\n", p.c_str());
        return 2;
      }
      bf16 = p == "bf16";
    } else if (a == "--tf32" || a == "--deterministic") {
      std::string v = next();
      if (v != "on" && v != "off") {
        std::fprintf(stderr, "advcl_bench: %s must be on or off, not %s\n", a.c_str(), v.c_str());
        return 2;
      }
      (a == "--tf32" ? cuda::set_allow_tf32 : cuda::set_deterministic)(v == "on");
    } else {
      std::fprintf(stderr,
                   "usage: advcl_bench [--threads N] [--batch B] [--repeat R] [--only SUBSTRING] "
                   "[--matmul-path onednn|blas] [--device cpu|cuda[:N]] [--tf32 on|off] "
                   "[--deterministic on|off] [--precision fp32|bf16]\n");
      return 2;
    }
  }
  set_num_threads(threads);
  g_on_gpu = device.is_cuda();
  if (g_on_gpu) {
    try {
      cuda::check_device(device.index);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "advcl_bench: %s\n", e.what());
      return 1;
    }
    std::fprintf(stderr, "advcl_bench: %s, batch %lld, median of %d, TF32 %s, cuDNN deterministic %s\n",
                 cuda::device_description(device.index).c_str(), static_cast<long long>(batch), repeat,
                 cuda::allow_tf32() ? "on" : "off", cuda::deterministic() ? "on" : "off");
  } else {
    std::fprintf(stderr, "advcl_bench: %d threads, batch %lld, median of %d, float32 matmul through %s, %s\n",
                 threads, static_cast<long long>(batch), repeat,
                 ops::matmul_cpu_path() == ops::MatmulCpuPath::Blas ? "OpenBLAS" : "oneDNN",
                 bf16 ? "conv2d and matmul in bf16 (oneDNN)" : "float32");
  }
  autocast::AutocastGuard precision(bf16);
  // The inputs are drawn on the CPU (the same numbers on either device) and moved.
  auto on_device = [&](Tensor t) { return t.to(device).set_requires_grad(); };
  auto wanted = [&](const std::string& name) { return only.empty() || name.find(only) != std::string::npos; };
  // The distinct convolutions of ResNet-18 (CIFAR), by input size.
  const ConvCase convs[] = {
      {"conv_stem_3_64_32", 3, 64, 32, 3, 1, 1},    {"conv_64_64_32", 64, 64, 32, 3, 1, 1},
      {"conv_64_128_32_s2", 64, 128, 32, 3, 2, 1},  {"conv_128_128_16", 128, 128, 16, 3, 1, 1},
      {"conv_128_256_16_s2", 128, 256, 16, 3, 2, 1}, {"conv_256_256_8", 256, 256, 8, 3, 1, 1},
      {"conv_256_512_8_s2", 256, 512, 8, 3, 2, 1},  {"conv_512_512_4", 512, 512, 4, 3, 1, 1},
      {"conv1x1_64_128_32_s2", 64, 128, 32, 1, 2, 0},
  };
  uint32_t step = 0;
  for (const ConvCase& c : convs) {
    if (!wanted(c.name)) {
      step += 2;  // the same data for the others as in a full run
      continue;
    }
    Tensor x = on_device(ops::rand_uniform({batch, c.cin, c.hw, c.hw}, {1, 0, step++, 0}, -1, 1));
    Tensor w = on_device(ops::rand_uniform({c.cout, c.cin, c.k, c.k}, {1, 0, step++, 0}, -0.1, 0.1));
    ops::Conv2dOptions opt{static_cast<int>(c.stride), static_cast<int>(c.pad)};
    report(std::string(c.name) + ".fwd", median_ms([&] {
             NoGradGuard g;
             ops::conv2d(x, w, Tensor(), opt);
           }, repeat));
    report(std::string(c.name) + ".fwd_bwd", median_ms([&] {
             Tensor y = ops::conv2d(x, w, Tensor(), opt);
             grad(y, {x, w}, Tensor::ones(y.shape()));
           }, repeat));
  }
  if (wanted("linear_512x512_b512")) {
    Tensor x = on_device(ops::rand_uniform({512, 512}, {1, 0, step++, 0}, -1, 1));
    Tensor w = on_device(ops::rand_uniform({512, 512}, {1, 0, step++, 0}, -0.05, 0.05));
    Tensor b = on_device(ops::rand_uniform({512}, {1, 0, step++, 0}, -0.05, 0.05));
    report("linear_512x512_b512.fwd_bwd", median_ms([&] {
             Tensor y = ops::linear(x, w, b);
             grad(y, {x, w, b}, Tensor::ones(y.shape()));
           }, repeat * 4));
  }
  return 0;
}
