// Timings of whole AdvCL training steps (advcl/pretrain/advcl_step.h) on random CIFAR-
// shaped data: ResNet-18 of a given width with its three BN sets and heads
// (advcl/pretrain/contrastive_model.h), SGD, batch B, on the CPU or one GPU.
// Prints one JSON object per step (the time includes waiting for the device). Run through
// bench/advcl_step_bench.py, which times the PyTorch step on the same shapes
// and device.
//   advcl_step_bench [--width W] [--batch B] [--steps S] [--threads N]
//                    [--device cpu|cuda[:N]] [--tf32 on|off] [--deterministic on|off]
//                    [--precision fp32|bf16]
// --precision bf16 runs the steps under autocast (engine/autocast.h).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "advcl/pretrain/advcl_step.h"
#include "advcl/pretrain/contrastive_model.h"
#include "cuda/runtime.h"
#include "cuda/settings.h"
#include "engine/autocast.h"
#include "engine/ops.h"
#include "engine/parallel.h"

using namespace advcl;

int main(int argc, char** argv) {
  int64_t width = 64, batch = 64;
  int steps = 2, threads = 1;
  bool bf16 = false;
  std::string device_name = "cpu";
  const char* usage =
      "usage: advcl_step_bench [--width W] [--batch B] [--steps S] [--threads N] [--device cpu|cuda[:N]] "
      "[--tf32 on|off] [--deterministic on|off] [--precision fp32|bf16]\n";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "advcl_step_bench: %s needs a value\n%s", a.c_str(), usage);
      return 2;
    }
    std::string v = argv[++i];
    if (a == "--width") width = std::atoll(v.c_str());
    else if (a == "--batch") batch = std::atoll(v.c_str());
    else if (a == "--steps") steps = std::atoi(v.c_str());
    else if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--device") device_name = v;
    else if (a == "--tf32" && (v == "on" || v == "off")) cuda::set_allow_tf32(v == "on");
    else if (a == "--deterministic" && (v == "on" || v == "off")) cuda::set_deterministic(v == "on");
    else if (a == "--precision" && (v == "fp32" || v == "bf16")) bf16 = v == "bf16";
    else {
      std::fprintf(stderr, "advcl_step_bench: unknown option %s %s\n%s", a.c_str(), v.c_str(), usage);
      return 2;
    }
  }
  if (width < 1 || batch < 2 || steps < 1 || threads < 1) {
    std::fprintf(stderr, "advcl_step_bench: need width >= 1, batch >= 2, steps >= 1, threads >= 1\n");
    return 2;
  }
  try {
    set_num_threads(threads);
    Device device = Device::parse(device_name);
    std::string where = std::to_string(threads) + " threads";
    if (device.is_cuda()) {
      cuda::set_current_device(device.index);  // where kernels run
      cuda::check_device(device.index);
      where = cuda::device_description(device.index) + ", TF32 " + (cuda::allow_tf32() ? "on" : "off") +
              ", cuDNN deterministic " + (cuda::deterministic() ? "on" : "off");
    }
    std::fprintf(stderr, "advcl_step_bench: %s, %s\n", where.c_str(), bf16 ? "bf16 autocast" : "fp32");
    autocast::AutocastGuard precision(bf16);
    method::ContrastiveModelOptions mo;
    mo.backbone.width = width;
    method::ContrastiveModel model(mo);
    model.to(device);
    nn::Sgd sgd(model.named_parameters(), {0.1, 0.9, 1e-4});
    method::AdvclStepOptions opt;  // the paper's: eps 8/255, 5 steps of 2/255, radius 8
    uint32_t stream = 0;
    auto image = [&] { return ops::rand_uniform({batch, 3, 32, 32}, {7, 0, stream++, 0}).to(device); };
    method::AdvclBatch b{image(), image(), image(), {}};
    for (int64_t k : mo.pseudo_classes) {
      std::vector<int64_t> y(batch);
      RngKey key{7, 1, stream++, 0};
      for (int64_t i = 0; i < batch; ++i) y[i] = key.below(i, static_cast<uint32_t>(k));
      b.pseudo.push_back(Tensor::from_vector<int64_t>(y, {batch}).to(device));
    }
    std::vector<Tensor> starts = method::advcl_attack_starts(b.x_org, opt, {7, 0, 0, 0});
    if (device.is_cuda()) cuda::synchronize();  // the set-up's uploads are not part of a step
    for (int s = 0; s < steps; ++s) {
      auto t0 = std::chrono::steady_clock::now();
      method::AdvclStepResult r = method::advcl_step(model, sgd, b, starts, opt);
      double loss = r.loss.item();  // waits for the device: the step's time includes its kernels
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::printf("{\"name\": \"advcl_step.w%lld.b%lld\", \"step\": %d, \"ms\": %.1f, \"loss\": %.6g}\n",
                  static_cast<long long>(width), static_cast<long long>(batch), s, ms, loss);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "advcl_step_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
