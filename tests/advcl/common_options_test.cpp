// The shared command-line helpers: options_json (what run.json, results.json
// and checkpoint metadata record of the command line) and the --device option.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "advcl/cli/common_options.h"
#include "cuda/runtime.h"
#include "engine/common.h"

using namespace advcl;

TEST(OptionsJson, RecordsEveryValueOfAListOptionAndDefaults) {
  CLI::App app("t");
  std::vector<int64_t> milestones{15, 20};
  double lr = 0.01;
  bool flag = false;
  app.add_option("--milestones", milestones, "")->delimiter(',')->capture_default_str();
  app.add_option("--lr", lr, "")->capture_default_str();
  app.add_flag("--flag", flag, "");
  const char* argv[] = {"t", "--milestones", "10,13,17"};
  app.parse(3, const_cast<char**>(argv));
  nlohmann::json j = nlohmann::json::parse(cli::options_json(app));
  EXPECT_EQ(j["milestones"], "10,13,17");
  EXPECT_EQ(j["lr"], "0.01");  // not given: the default
  EXPECT_FALSE(j.contains("help"));
}

TEST(DeviceFromOption, ParsesTheOptionAndNamesItInErrors) {
  EXPECT_EQ(cli::device_from_option("cpu"), Device::cpu());
  EXPECT_EQ(cli::device_from_option("cuda:1"), Device::cuda(1));
  EXPECT_EQ(cli::device_from_option("cuda"), Device::cuda(0));  // one process: its first GPU
  try {
    cli::device_from_option("gpu");
    FAIL() << "no error for --device gpu";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--device"), std::string::npos) << e.what();
  }
}

// resolve_device also selects the GPU; where there is none (or no CUDA in
// the build) it fails at once with a message naming CUDA, not at the first op.
TEST(ResolveDevice, SelectsTheGpuOrSaysWhyNot) {
  EXPECT_EQ(cli::resolve_device("cpu"), Device::cpu());
  const int n = cuda::device_count();
  if (n > 0) {
    EXPECT_EQ(cli::resolve_device("cuda:0"), Device::cuda(0));
  }
  try {
    cli::resolve_device("cuda:" + std::to_string(n));  // one past the last GPU (cuda:0 without any)
    FAIL() << "no error for a GPU that does not exist";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda"), std::string::npos) << e.what();
  }
  if (n > 0) {
    EXPECT_EQ(cli::resolve_device("cuda"), Device::cuda(0));  // cuda:0 current again
  }
}

// --precision: auto means TF32 tensor cores on a GPU and plain fp32 on a CPU;
// TF32 on a CPU is refused (the CPU has no such arithmetic), and a typo is
// named.
TEST(PrecisionFor, AutoFollowsTheDeviceAndTf32NeedsAGpu) {
  EXPECT_EQ(cli::precision_for("auto", Device::cpu()), "fp32");
  EXPECT_EQ(cli::precision_for("auto", Device::cuda(0)), "tf32");
  EXPECT_EQ(cli::precision_for("fp32", Device::cuda(1)), "fp32");
  EXPECT_EQ(cli::precision_for("tf32", Device::cuda(0)), "tf32");
  for (const char* bad : {"tf32", "fp16", ""}) {
    try {
      cli::precision_for(bad, Device::cpu());
      FAIL() << "no error for --precision '" << bad << "' on the CPU";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
    }
  }
}

// --precision bf16: mixed precision on a GPU of compute capability 8.0 or
// newer (whatever the CPU has), and on a CPU with native bf16 that oneDNN
// uses; refused with the reason on a CPU without it (emulated bf16 is slower
// than fp32) and on an older GPU, never silently run in fp32.
TEST(PrecisionFor, Bf16NeedsAnAmpereGpuOrACpuWithNativeBf16) {
  cpu::Bf16Support native;
  native.avx512_bf16 = native.onednn_bf16 = true;
  native.onednn_isa = "avx512_core_bf16";
  EXPECT_EQ(cli::precision_for("bf16", Device::cpu(), native), "bf16");
  auto refused = [](const cpu::Bf16Support& s, const Device& d, const char* reason) {
    try {
      cli::precision_for("bf16", d, s);
      ADD_FAILURE() << "no error for --precision bf16 on " << d.str();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--precision bf16"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
    }
  };
  cpu::Bf16Support none;
  none.onednn_isa = "avx2";
  refused(none, Device::cpu(), "no native bf16");
  cpu::Bf16Support held = none;
  held.avx512_bf16 = true;  // the CPU has it, but oneDNN is limited below it
  refused(held, Device::cpu(), "avx2");
  // A GPU run multiplies on the GPU: the CPU's bf16 plays no part.
  EXPECT_EQ(cli::precision_for("bf16", Device::cuda(0), none), "bf16");
  EXPECT_EQ(cli::precision_for("bf16", Device::cuda(1), native), "bf16");
  EXPECT_EQ(cli::precision_for("bf16", Device::cuda(0)), "bf16") << "the two-argument form must not ask the CPU";
  // The two-argument form asks this machine for a CPU run.
  if (cpu::bf16_support().native())
    EXPECT_EQ(cli::precision_for("bf16", Device::cpu()), "bf16");
  else
    refused(cpu::bf16_support(), Device::cpu(), "bf16");
}

// The GPU's part of the bf16 rule (resolve_compute applies it to the
// selected GPU): bf16 tensor cores from compute capability 8.0 (A100: 8.0,
// RTX 30xx: 8.6, H100: 9.0, Blackwell: 10.0, 12.0) on; V100 (7.0) and T4
// (7.5) are refused, with their capability named.
TEST(PrecisionFor, Bf16OnAGpuNeedsComputeCapability80) {
  for (int cc : {80, 86, 89, 90, 100, 120}) EXPECT_EQ(cli::gpu_bf16_missing(cc), "") << cc;
  for (int cc : {60, 70, 75, 79}) {
    const std::string why = cli::gpu_bf16_missing(cc);
    EXPECT_NE(why.find(std::to_string(cc / 10) + "." + std::to_string(cc % 10)), std::string::npos) << why;
    EXPECT_NE(why.find("8.0"), std::string::npos) << why;
  }
  // Where there is a GPU, its capability is read (every GPU CUDA 13 runs on is 7.5 or newer).
  if (cuda::device_count() > 0) {
    EXPECT_GE(cuda::compute_capability(0), 75);
  }
}
