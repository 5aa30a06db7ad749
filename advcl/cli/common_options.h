// Command-line options shared by the stages (CLI11), and what they set up:
// the dataset, threads, seed and output folder.
#pragma once
#include <CLI/CLI.hpp>
#include <map>
#include <memory>
#include <string>

#include "datasets/image_dataset.h"
#include "engine/autocast.h"
#include "engine/cpu_features.h"
#include "engine/device.h"

namespace advcl::cli {

struct DataOptions {
  std::string data, format = "auto", split = "train", fit;
  int64_t limit = 0, per_class = 0, size = 32, channels = 0;
};

struct CommonOptions {
  DataOptions data;
  std::string out;
  uint64_t seed = 0;
  int threads = 0;  // 0: OpenMP's default
  int workers = 2;
  int64_t log_every = 10;
};

// Adds --data, --dataset, --split, --limit, --per-class, --size, --channels, --fit.
void add_data_options(CLI::App& app, DataOptions& o, bool with_split = true);
// Adds the data options and --out, --seed, --threads, --workers, --log-every.
void add_common_options(CLI::App& app, CommonOptions& o);
// Loads the dataset the options name and prints its description.
std::shared_ptr<const data::ImageDataset> load_data(const DataOptions& o, const std::string& split);
// Applies --threads.
void apply_threads(const CommonOptions& o);
// The device a --device option names ("cpu", "cuda", "cuda:N"; error naming
// the option otherwise). Under mpirun a plain "cuda" is the rank's local GPU
// (its local rank), so one command line serves every rank.
Device device_from_option(const std::string& device_option);
// device_from_option, and for a GPU also checks it and makes it the current
// device of this thread (where kernels and library calls run): what every
// command calls once before building its model.
Device resolve_device(const std::string& device_option);
// --device and --precision: where a command computes, and in which arithmetic.
struct DeviceOptions {
  std::string device = "cpu";      // cpu, cuda, cuda:N
  std::string precision = "auto";  // auto, fp32, tf32, bf16
};
// Adds --device and --precision (every command that trains or evaluates).
void add_device_options(CLI::App& app, DeviceOptions& o);
// What every training command offers about its checkpoints and its run:
// --save-epoch, --save-steps, --no-resume, --detect-anomaly, and the device options.
void add_training_run_options(CLI::App& app, int64_t& save_epoch, int64_t& save_steps, bool& no_resume,
                              bool& detect_anomaly, DeviceOptions& compute);
// The precision a run uses: "auto" is tf32 on a GPU (TensorFloat-32 tensor
// cores for convolutions and matmuls, PyTorch's default for cuDNN) and fp32
// on a CPU; tf32 on a CPU is refused (the CPU has no TF32 arithmetic). bf16
// is mixed precision (docs/precision.md): on a GPU (cuDNN and cuBLAS with
// bf16 operands; the GPU itself is checked by resolve_compute once it is
// selected, see gpu_bf16_missing), and on a CPU only one with native bf16
// dot products that oneDNN uses (`bf16`, detected at run time, and not asked
// for a GPU run). Where it cannot run it is refused with the reason, not run
// in fp32, so that a run's recorded precision is always the arithmetic it had.
// Returns "fp32", "tf32" or "bf16"; errors name --precision.
std::string precision_for(const std::string& precision_option, const Device& device);
std::string precision_for(const std::string& precision_option, const Device& device, const cpu::Bf16Support& bf16);
// Why a GPU of compute capability `capability` (major * 10 + minor: 86 for
// 8.6) cannot run --precision bf16, in words for an error message; "" from
// 8.0 (Ampere) on, the first GPUs whose tensor cores multiply bf16 (cuDNN's
// bf16 convolutions and cuBLAS's bf16 GEMMs need them).
std::string gpu_bf16_missing(int capability);
// What a command computes on: the device (resolve_device) and the precision,
// applied to the GPU's settings (cuda::set_allow_tf32) and printed once. For
// bf16, `autocast` turns autocast on for the calling thread (where the steps
// run) for as long as the setup, or a copy of the pointer, lives.
struct ComputeSetup {
  Device device;
  std::string precision;  // "fp32", "tf32" or "bf16": recorded in metrics and checkpoint metadata
  std::shared_ptr<autocast::AutocastGuard> autocast;  // set for bf16 only
};
ComputeSetup resolve_compute(const DeviceOptions& o);
// The options as a JSON object of strings (for run.json and checkpoint metadata).
std::string options_json(const CLI::App& app);

}  // namespace advcl::cli
