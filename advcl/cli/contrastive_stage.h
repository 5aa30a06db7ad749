// What the two contrastive pretraining stages (`simclr`, `pretrain`) share:
// their schedule options, and the setup of data, model, optimiser, loader,
// cosine schedule, checkpoints and resume around a stage-specific step.
#pragma once
#include <memory>
#include <string>

#include "advcl/cli/common_options.h"
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/run/train_loop.h"
#include "engine/device.h"
#include "nn/schedule.h"

namespace advcl::cli {

struct ContrastiveOptions {
  CommonOptions common;
  int64_t epochs = 1000, batch_size = 512, width = 64, save_epoch = 100, save_steps = 0, stop_epoch = 0;
  double lr = 0.5, momentum = 0.9, weight_decay = 1e-4;
  bool no_resume = false;
  bool resume = false;       // --resume: resuming is the default; with it, a missing checkpoint is an error
  bool detect_anomaly = false;  // --detect-anomaly: name the op that first makes inf/NaN (slow; engine/autograd.h)
  DeviceOptions compute;  // --device (under mpirun: cuda means this rank's local GPU) and --precision
  // Data parallel (under mpirun): synchronised batch norm, on by default with
  // more than one rank; --no-sync-bn keeps each rank's statistics local.
  bool no_sync_bn = false;
  int64_t check_every = 0;  // compare the ranks' parameters every N steps (0: never)
};

// --epoch, --batch-size, --learning_rate, --momentum, --weight_decay, --width,
// --save-epoch, --save-steps, --stop-epoch, --no-resume, and the common options.
void add_contrastive_options(CLI::App& app, ContrastiveOptions& o);

struct ContrastiveRun {
  std::string stage;
  Device device;
  std::string precision;  // fp32, tf32 or bf16 (recorded in the checkpoints)
  std::shared_ptr<autocast::AutocastGuard> autocast;  // bf16: autocast on for this thread while the run lives
  std::unique_ptr<RunDir> dir;
  std::shared_ptr<const data::ImageDataset> data;
  method::ContrastiveModelOptions model_options;
  std::unique_ptr<method::ContrastiveModel> model;
  std::unique_ptr<nn::Sgd> sgd;
  std::unique_ptr<data::BatchLoader> loader;
  nn::CosineWarmupSchedule schedule;
  LoopOptions loop;
  ResumePoint from;
};

// Threads, output folder (with run.json) and the training data.
ContrastiveRun start_run(const std::string& stage, const CLI::App& app, const ContrastiveOptions& o);
// The model (options `mo` with the backbone's width, input channels and seed
// filled in here), optimiser, loader over `views`, schedule and resume point.
void build_run(ContrastiveRun& r, const CLI::App& app, const ContrastiveOptions& o, method::ContrastiveModelOptions mo,
               std::shared_ptr<const data::SampleTransform> views);
// Trains to the end (or --stop-epoch) and prints where the encoder is.
// With several ranks, `step` must average the gradients before its SGD step
// (dist::average_gradients); finish_run checks the ranks agree when asked.
void finish_run(ContrastiveRun& r, const ContrastiveOptions& o, const StepFn& step);

}  // namespace advcl::cli
