// What every training stage shares: the output folder with its checkpoints
// and metrics, progress lines, and finding the checkpoint to resume from.
//
// A run folder holds
//   last.safetensors         the newest checkpoint (rewritten atomically)
//   epoch_N.safetensors      kept every --save-epoch epochs
//   metrics.jsonl            one JSON object per logged step and per epoch
//   run.json                 the options the run started with
//   run.lock                 held (flock) by the process writing the folder
//
// Every file is written through engine/atomic_file.h: checkpoints and JSON
// replace the old version only once the new one is complete and on disk, and
// metrics lines are appended whole or not at all.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace advcl::cli {

class RunDir {
 public:
  // Creates the folder (and parents) if needed; throws naming it if it cannot.
  // On rank 0 (the writer), also takes an exclusive lock on the folder for
  // the object's lifetime: a second process on the same folder is refused
  // with the holder's PID. The kernel drops the lock when the process ends,
  // however it ends (exit, crash, SIGKILL), so no stale lock survives.
  explicit RunDir(std::string path);
  ~RunDir();
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string last_checkpoint() const { return file("last.safetensors"); }
  std::string epoch_checkpoint(int64_t epoch) const;
  bool has_checkpoint() const;
  // Appends the object as one line of JSON (advcl/run/json_out.h's
  // json_line); the line reaches the disk whole, or the call throws.
  void log_metrics(const nlohmann::json& fields) const;
  // Replaces `name` atomically; on failure the previous file is kept.
  void write_text(const std::string& name, const std::string& text) const;

 private:
  void lock();
  std::string path_;
  int lock_fd_ = -1;
};

// "3 steps of 100 images" for an epoch of `images` in steps of `batch_size`
// that the loader cut into `steps`, saying when the last step is shorter
// (or, with drop-last, how many images are left out), so that a batch size
// larger than the data set is not reported as steps of that size.
std::string steps_text(int64_t images, int64_t batch_size, int64_t steps);

// Progress lines on stderr: "[stage] epoch e/E step s/S  key value ...  img/s  ETA".
class Progress {
 public:
  Progress(std::string stage, int64_t epochs, int64_t steps_per_epoch);
  void begin_epoch();
  // Prints when `force` or when the step is a multiple of every_steps.
  void step(int64_t epoch, int64_t step, int64_t images, const std::string& values, int64_t every_steps,
            bool force = false);
  double epoch_seconds() const;

 private:
  std::string stage_;
  int64_t epochs_, steps_;
  int64_t images_ = 0;
  std::chrono::steady_clock::time_point epoch_start_;
};

}  // namespace advcl::cli
