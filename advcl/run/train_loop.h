// The epoch loop every training stage shares: learning-rate schedule per
// step, progress lines, metrics, checkpoints (atomic, every epoch and every
// --save-steps steps, with the loader position), and resume.
//
// The loop keeps a step's values on the device: it reads them (all at once,
// one host round trip) only on the steps that print a progress line or log
// metrics, and adds them up per epoch on the device (one read at the epoch's
// end). A non-finite value is caught on the next logged step, before every
// checkpoint is written (from the sums, which it poisons) and at the epoch's
// end, so a checkpoint never holds a diverged model.
//
// Each logged metrics line also has
//   host_syncs     host round trips (engine/counters.h) since the previous
//                  logged line, this step's read of its values included;
//   device_allocs  raw device allocations (cudaMalloc by the caching
//                  allocator, all GPUs) since the previous logged line, not
//                  counting the run's first step (warm-up); 0 on the CPU.
#pragma once
#include <functional>
#include <map>
#include <string>

#include "advcl/run/run_dir.h"
#include "advcl/step/step_values.h"
#include "datasets/batch_loader.h"
#include "nn/module.h"
#include "nn/sgd.h"

namespace advcl::cli {

struct LoopOptions {
  std::string stage;       // "pretrain", "simclr", ...
  int64_t epochs = 1;      // total, 1-based epochs 1..epochs
  int64_t save_epoch = 0;  // also keep epoch_N every N epochs (0: never)
  int64_t save_steps = 0;  // rewrite last.safetensors every N steps inside an epoch (0: only at epoch ends)
  int64_t log_every = 10;
  // Stop after this epoch although the schedule runs to `epochs` (0: run to
  // the end); a later run with the same options resumes from the checkpoint.
  // For time-limited jobs, and for the resume tests.
  int64_t stop_epoch = 0;
  std::map<std::string, std::string> metadata;  // written into every checkpoint
  // --detect-anomaly: the engine's anomaly mode is on (engine/autograd.h);
  // the loop also checks the model and optimiser state after every step, and
  // a stop names the op (or the tensor) that first held inf/NaN.
  bool detect_anomaly = false;
  // Called after each epoch's steps, before that epoch's checkpoint is saved
  // (e.g. test-set evaluation). The entries it returns are merged into the
  // metadata of this and every later checkpoint, so a stage can keep
  // per-epoch state (evaluation history) that survives resume.
  std::function<std::map<std::string, std::string>(int64_t epoch)> on_epoch_end;
};

// lr of step `batch` (0-based) of 1-based `epoch` with `nb` steps per epoch.
using LrSchedule = std::function<double(int64_t epoch, int64_t batch, int64_t nb)>;
// One training step on a batch; returns the values to print and log (e.g.
// loss) as 0-D tensors on the model's device, not read by the step.
using StepFn = std::function<method::StepValues(const data::Batch& batch, int64_t global_step)>;

// Where a run continues: loader position and global step.
struct ResumePoint {
  data::LoaderState loader;
  int64_t global_step = 0;
  bool resumed = false;
  std::map<std::string, std::string> metadata;  // every entry of the checkpoint resumed from
};

// Loads dir/last.safetensors into model and optimiser if it exists (and
// `resume` is on); checks first that the checkpoint belongs to `stage`
// ("this folder holds a <stage> run"). Commands call check_resume
// (advcl/run/resume_check.h) before this, before they write into the folder.
ResumePoint resume_if_any(const RunDir& dir, nn::Module& model, nn::Sgd& sgd, const std::string& stage, bool resume);

// Thrown by run_training after SIGINT or SIGTERM, once the checkpoint of the
// step in progress is written: the run ends cleanly and resumes when rerun.
class Interrupted : public Error {
 public:
  Interrupted(const std::string& what, int signal) : Error(what), signal(signal) {}
  int signal;  // SIGINT or SIGTERM: `advcl` exits 128 + signal, as a shell reports it
};

// Trains until `opt.epochs` are done, starting at `from`. SIGINT/SIGTERM
// finish the current step, save a checkpoint and throw Interrupted.
void run_training(const RunDir& dir, nn::Module& model, nn::Sgd& sgd, data::BatchLoader& loader, const LoopOptions& opt,
                  const LrSchedule& lr, const StepFn& step, ResumePoint from);

}  // namespace advcl::cli
