// One training step of ResNet-18 (CIFAR variant, width 64, one BN set, a
// 10-class linear head): forward, mean cross-entropy, backward, SGD step
// (momentum 0.9, weight decay 5e-4), on 3x32x32 images. This is the unit of
// every finetuning epoch, so it says what a whole run costs here.
// Prints one JSON object per batch size: {"name": "resnet18_step_b<B>", "ms": ...}
// (median of the timed steps after warm-up). Run through
// bench/resnet_step_bench.py, which times PyTorch on the same model and threads
// (or, with --device cuda, on the same GPU).
//   advcl_resnet_bench [--threads N] [--batches 32,128] [--warmup W] [--repeat R] [--device cpu|cuda[:N]]
//                      [--tf32 on|off] [--deterministic on|off] [--precision fp32|bf16]
// --precision bf16 runs the step under autocast (conv2d and linear in bf16 with
// float32 sums, the rest float32: engine/autocast.h; CPU only).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "advcl/finetune/finetune_model.h"
#include "cuda/runtime.h"
#include "cuda/settings.h"
#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "nn/sgd.h"

using namespace advcl;

namespace {

double step_median_ms(int64_t batch, int warmup, int repeat, Device device) {
  nn::ResNetOptions o;
  o.width = 64;
  o.num_bn_sets = 1;
  o.seed = 1;
  method::FinetuneModel model(std::make_unique<nn::ResNet18>(o), 10, 2);
  model.to(device);
  model.train();
  nn::Sgd sgd(model.named_parameters(), {0.01, 0.9, 5e-4});
  Tensor x = ops::rand_uniform({batch, 3, 32, 32}, {4, 0, 0, 0}, 0, 1).to(device);
  Tensor y = ops::rand_int({batch}, {4, 1, 0, 0}, 0, 10).to(device);
  std::vector<double> t;
  for (int i = 0; i < warmup + repeat; ++i) {
    auto a = std::chrono::steady_clock::now();
    sgd.zero_grad();
    Tensor loss = ops::cross_entropy(model.logits(x), y, ops::Reduction::Mean);
    backward(loss);
    sgd.step();
    double l = loss.item();  // waits for the step, on a GPU too (and catches a NaN)
    auto b = std::chrono::steady_clock::now();
    if (!(l == l)) {
      std::fprintf(stderr, "advcl_resnet_bench: loss is NaN at step %d\n", i);
      std::exit(1);
    }
    if (i >= warmup) t.push_back(std::chrono::duration<double, std::milli>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, warmup = 2, repeat = 5;
  std::vector<int64_t> batches = {32, 128};
  Device device = Device::cpu();
  bool bf16 = false;
  const char* usage =
      "usage: advcl_resnet_bench [--threads N] [--batches 32,128] [--warmup W] [--repeat R] [--device cpu|cuda[:N]] "
      "[--tf32 on|off] [--deterministic on|off] [--precision fp32|bf16]\n";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
    std::string v = argv[++i];
    if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--warmup") warmup = std::atoi(v.c_str());
    else if (a == "--repeat") repeat = std::atoi(v.c_str());
    else if (a == "--tf32" && (v == "on" || v == "off")) cuda::set_allow_tf32(v == "on");
    else if (a == "--deterministic" && (v == "on" || v == "off")) cuda::set_deterministic(v == "on");
    else if (a == "--precision" && (v == "fp32" || v == "bf16")) bf16 = v == "bf16";
    else if (a == "--device") {
      try {
        device = Device::parse(v);
        if (device.is_cuda()) cuda::set_current_device(device.index);  // where kernels run
      } catch (const std::exception& e) {
        std::fprintf(stderr, "advcl_resnet_bench: --device: %s\n", e.what());
        return 2;
      }
    } else if (a == "--batches") {
      batches.clear();
      std::stringstream ss(v);
      for (std::string b; std::getline(ss, b, ',');) batches.push_back(std::atoll(b.c_str()));
    } else {
      std::fprintf(stderr, "advcl_resnet_bench: unknown option %s %s\n%s", a.c_str(), v.c_str(), usage);
      return 2;
    }
  }
  if (threads < 1 || warmup < 0 || repeat < 1 || batches.empty()) {
    std::fprintf(stderr, "advcl_resnet_bench: need threads >= 1, warmup >= 0, repeat >= 1, some batches\n");
    return 2;
  }
  set_num_threads(threads);
  std::string where = std::to_string(threads) + " threads";
  if (device.is_cuda()) {
    try {
      cuda::check_device(device.index);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "advcl_resnet_bench: %s\n", e.what());
      return 1;
    }
    where = cuda::device_description(device.index) + ", TF32 " + (cuda::allow_tf32() ? "on" : "off") +
            ", cuDNN deterministic " + (cuda::deterministic() ? "on" : "off");
  }
  std::fprintf(stderr, "advcl_resnet_bench: %s, %s, %d warm-up + median of %d steps\n", where.c_str(),
               bf16 ? "bf16 autocast" : "float32", warmup, repeat);
  autocast::AutocastGuard precision(bf16);
  for (int64_t b : batches) {
    double ms = step_median_ms(b, warmup, repeat, device);
    std::printf("{\"name\": \"resnet18_step_b%lld\", \"ms\": %.3f}\n", static_cast<long long>(b), ms);
    std::fflush(stdout);
  }
  return 0;
}
