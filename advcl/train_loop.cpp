#include "advcl/train_loop.h"

#include <csignal>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "advcl/parse_number.h"
#include "dist/communicator.h"
#include "nn/checkpoint.h"

namespace advcl::cli {

namespace {

std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) { g_signal.store(sig); }

// From now on SIGINT and SIGTERM only raise a flag that the loop checks
// between steps (a step is never cut in half).
void catch_stop_signals() {
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Whether any rank was asked to stop: all ranks must stop after the same step.
int stop_requested() {
  int64_t sig = g_signal.load();
  if (dist::world().distributed()) dist::world().all_reduce(&sig, 1, dist::ReduceOp::Max, "stop signal");
  return static_cast<int>(sig);
}

[[noreturn]] void throw_interrupted(const LoopOptions& opt, int sig, int64_t global_step, const RunDir& dir) {
  throw Interrupted(opt.stage + ": stopped by signal " + std::to_string(sig) + " after step " +
                    std::to_string(global_step) + "; checkpoint " + dir.last_checkpoint() +
                    " (rerun the same command to resume)",
                    sig);
}

// Rank 0 writes (checkpoints, metrics, progress); every rank holds the same
// model, so any of them can resume from what it wrote.
bool writer() { return dist::world().is_root(); }

void save(const nn::Module& model, const nn::Sgd& sgd, const LoopOptions& opt,
          const std::map<std::string, std::string>& metadata, data::LoaderState next, int64_t global_step,
          const std::string& path) {
  if (!writer()) return;
  nn::CheckpointInfo info;
  info.epoch = next.epoch;  // completed epochs when next.batch == 0
  info.step = global_step;
  info.metadata = metadata;
  info.metadata["stage"] = opt.stage;
  info.metadata["loader_epoch"] = std::to_string(next.epoch);
  info.metadata["loader_batch"] = std::to_string(next.batch);
  nn::save_checkpoint(path, model, &sgd, info);
}

int64_t meta_int(const nn::CheckpointInfo& info, const std::string& key, const std::string& path) {
  auto it = info.metadata.find(key);
  if (it == info.metadata.end()) fail(path, ": checkpoint lacks '", key, "' (not written by an advcl training stage?)");
  return metadata_int(path, key, it->second);
}

}  // namespace

ResumePoint resume_if_any(const RunDir& dir, nn::Module& model, nn::Sgd& sgd, const std::string& stage, bool resume) {
  ResumePoint p;
  if (!resume || !dir.has_checkpoint()) return p;
  std::string path = dir.last_checkpoint();
  nn::CheckpointInfo info = nn::load_checkpoint(path, model, &sgd);
  auto st = info.metadata.find("stage");
  if (st == info.metadata.end() || st->second != stage)
    fail(path, ": this checkpoint is from stage '", st == info.metadata.end() ? "?" : st->second,
         "', not '", stage, "'; use another --out or --no-resume");
  p.loader = {meta_int(info, "loader_epoch", path), meta_int(info, "loader_batch", path)};
  p.global_step = info.step;
  p.resumed = true;
  p.metadata = info.metadata;
  std::fprintf(stderr, "resuming from %s: epoch %lld, batch %lld, step %lld\n", path.c_str(),
               static_cast<long long>(p.loader.epoch + 1), static_cast<long long>(p.loader.batch),
               static_cast<long long>(p.global_step));
  return p;
}

void run_training(const RunDir& dir, nn::Module& model, nn::Sgd& sgd, data::BatchLoader& loader, const LoopOptions& opt,
                  const LrSchedule& lr, const StepFn& step, ResumePoint from) {
  int64_t nb = loader.batches_per_epoch();
  if (nb == 0) fail(opt.stage, ": no batches per epoch (dataset smaller than one batch with drop-last?)");
  loader.set_state(from.loader);
  catch_stop_signals();
  int64_t global_step = from.global_step;
  Progress progress(opt.stage, opt.epochs, nb);
  std::map<std::string, std::string> metadata = opt.metadata;  // grows with on_epoch_end's entries
  int64_t last = opt.stop_epoch > 0 ? std::min(opt.stop_epoch, opt.epochs) : opt.epochs;
  for (int64_t e0 = from.loader.epoch; e0 < last; ++e0) {
    int64_t epoch = e0 + 1;
    progress.begin_epoch();
    std::map<std::string, double> sums;
    int64_t steps = 0;
    data::Batch batch;
    while (loader.next(batch)) {
      double rate = lr(epoch, batch.index, nb);
      sgd.set_lr(rate);
      std::map<std::string, double> values = step(batch, global_step);
      for (auto& [k, v] : values)
        if (!std::isfinite(v))
          fail(opt.stage, ": ", k, " became ", v, " at epoch ", epoch, " step ", batch.index + 1,
               "; the last good checkpoint is ", dir.last_checkpoint());
      ++global_step;
      ++steps;
      std::ostringstream line;
      std::map<std::string, std::string> fields{{"stage", json_str(opt.stage)}, {"epoch", std::to_string(epoch)},
                                                {"step", std::to_string(global_step)}, {"lr", json_num(rate)}};
      for (auto& [k, v] : values) {
        sums[k] += v;
        line << k << " " << json_num(v) << "  ";
        fields[k] = json_num(v);
      }
      line << "lr " << json_num(rate);
      if (writer()) {
        progress.step(epoch, batch.index, batch.size(), line.str(), opt.log_every, batch.index + 1 == nb);
        if (opt.log_every > 0 && (batch.index + 1) % opt.log_every == 0) dir.log_metrics(fields);
      }
      if (opt.save_steps > 0 && global_step % opt.save_steps == 0 && batch.index + 1 < nb)
        save(model, sgd, opt, metadata, {e0, batch.index + 1}, global_step, dir.last_checkpoint());
      if (batch.index + 1 < nb)  // (after an epoch's last step, the epoch's end comes first)
        if (int sig = stop_requested()) {
          save(model, sgd, opt, metadata, {e0, batch.index + 1}, global_step, dir.last_checkpoint());
          throw_interrupted(opt, sig, global_step, dir);
        }
    }
    std::map<std::string, std::string> summary{{"stage", json_str(opt.stage)}, {"epoch", std::to_string(epoch)},
                                               {"epoch_seconds", json_num(progress.epoch_seconds())}};
    for (auto& [k, v] : sums) summary["mean_" + k] = json_num(v / static_cast<double>(std::max<int64_t>(steps, 1)));
    if (writer()) dir.log_metrics(summary);
    if (opt.on_epoch_end)
      for (auto& [k, v] : opt.on_epoch_end(epoch)) metadata[k] = v;
    save(model, sgd, opt, metadata, {epoch, 0}, global_step, dir.last_checkpoint());
    if (opt.save_epoch > 0 && epoch % opt.save_epoch == 0)
      save(model, sgd, opt, metadata, {epoch, 0}, global_step, dir.epoch_checkpoint(epoch));
    if (writer())
      std::fprintf(stderr, "[%s] epoch %lld done in %.1fs; checkpoint %s\n", opt.stage.c_str(),
                 static_cast<long long>(epoch), progress.epoch_seconds(), dir.last_checkpoint().c_str());
    if (int sig = stop_requested()) throw_interrupted(opt, sig, global_step, dir);
  }
}

}  // namespace advcl::cli
