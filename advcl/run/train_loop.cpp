#include "advcl/run/train_loop.h"

#include <csignal>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cuda/runtime.h"
#include "engine/parse_number.h"
#include "advcl/run/json_out.h"
#include "advcl/run/resume_check.h"
#include "nn/parallel/communicator.h"
#include "engine/counters.h"
#include "engine/finite_check.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"

#include <nlohmann/json.hpp>

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

// What a divergence message says about the checkpoint left on disk.
std::string kept_checkpoint(const RunDir& dir) {
  return dir.has_checkpoint() ? "the last good checkpoint is " + dir.last_checkpoint() + " (kept unchanged)"
                              : "no checkpoint was written (none holds finite values)";
}

const char* const kAnomalyHint = " (rerun with --detect-anomaly to name the op that first produced it)";

// Every tensor a checkpoint holds: the model's state (parameters and
// buffers, e.g. batch-norm running statistics) and the momentum buffers.
std::vector<std::pair<std::string, Tensor>> checkpoint_tensors(const nn::Module& model, const nn::Sgd& sgd) {
  std::vector<std::pair<std::string, Tensor>> all;
  for (const nn::NamedTensor& t : model.state_dict()) all.emplace_back(t.name, t.tensor);
  for (const auto& [name, buf] : sgd.momentum_buffers()) all.emplace_back("optim.momentum." + name, buf);
  return all;
}

// Fails, naming the first tensor, if the model or optimiser state holds inf
// or NaN: a loss can stay finite while a running variance overflows. One
// host read; every rank checks (they hold the same state), so all stop together.
void check_state_finite(const nn::Module& model, const nn::Sgd& sgd, const LoopOptions& opt, const RunDir& dir,
                        int64_t epoch, int64_t global_step, const std::string& when) {
  std::vector<std::string> bad = non_finite_names(checkpoint_tensors(model, sgd));
  if (bad.empty()) return;
  fail(opt.stage, ": ", bad.front(), bad.size() > 1 ? " (and " + std::to_string(bad.size() - 1) + " more tensors)" : "",
       " became non-finite (inf or NaN) by global step ", global_step, " (epoch ", epoch, "; ", when,
       "): the run diverged; ",
       kept_checkpoint(dir), opt.detect_anomaly ? "" : kAnomalyHint);
}

void save(const RunDir& dir, const nn::Module& model, const nn::Sgd& sgd, const LoopOptions& opt,
          const std::map<std::string, std::string>& metadata, data::LoaderState next, int64_t global_step,
          const std::string& path) {
  // Never replace a finite checkpoint with a diverged one.
  check_state_finite(model, sgd, opt, dir, next.batch == 0 ? next.epoch : next.epoch + 1, global_step,
                     "checked before writing " + path + ", which was not written");
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

// Raw device allocations so far, over every GPU (0 without one).
int64_t device_raw_allocs() {
  int64_t n = 0;
  for (int d = 0, count = cuda::device_count(); d < count; ++d)
    n += static_cast<int64_t>(cuda::memory_stats(d).raw_allocs);
  return n;
}

// The first non-finite value, if any: its name and value.
const std::pair<const std::string, double>* first_non_finite(const std::map<std::string, double>& values) {
  for (auto& kv : values)
    if (!std::isfinite(kv.second)) return &kv;
  return nullptr;
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
  check_checkpoint_stage(dir, path, load_safetensors(path).metadata, stage);  // before the tensors are matched
  nn::CheckpointInfo info = nn::load_checkpoint(path, model, &sgd);
  p.loader = {meta_int(info, "loader_epoch", path), meta_int(info, "loader_batch", path)};
  p.global_step = info.step;
  p.resumed = true;
  p.metadata = info.metadata;
  std::fprintf(stderr, "resuming from %s: epoch %lld, batch %lld, step %lld\n", path.c_str(),
               static_cast<long long>(p.loader.epoch + 1), static_cast<long long>(p.loader.batch),
               static_cast<long long>(p.global_step));
  return p;
}

namespace {

// A checkpoint written inside an epoch carries the epoch's sums so far, so
// that a resumed run's epoch means still cover the whole epoch.
const char* const kEpochSumsKey = "loop.epoch_sums";    // {"loss": sum, ...}
const char* const kEpochStepsKey = "loop.epoch_steps";  // steps those sums cover

std::map<std::string, std::string> with_epoch_sums(std::map<std::string, std::string> metadata,
                                                   const std::map<std::string, double>& sums, int64_t steps) {
  metadata[kEpochSumsKey] = nlohmann::json(sums).dump();
  metadata[kEpochStepsKey] = std::to_string(steps);
  return metadata;
}

// The sums a mid-epoch checkpoint carried (none in one written at an epoch's
// end, or by an older advcl: then the means cover the steps since the resume).
void restore_epoch_sums(const ResumePoint& from, const std::string& path, std::map<std::string, double>& sums,
                        int64_t& steps) {
  auto s = from.metadata.find(kEpochSumsKey), n = from.metadata.find(kEpochStepsKey);
  if (from.loader.batch == 0 || s == from.metadata.end() || n == from.metadata.end()) return;
  try {
    const nlohmann::json j = nlohmann::json::parse(s->second);
    if (!j.is_object()) throw nlohmann::json::type_error::create(302, "not an object", nullptr);
    for (auto it = j.begin(); it != j.end(); ++it) sums[it.key()] = it.value().get<double>();
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": metadata '", kEpochSumsKey, "' is not a JSON object of numbers (", e.what(), ")");
  }
  steps = metadata_int(path, kEpochStepsKey, n->second);
}

}  // namespace

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
  // Baselines of the logged host_syncs and device_allocs (train_loop.h).
  int64_t syncs_logged = counters::host_syncs(), allocs_logged = 0;
  bool warm = false;
  for (int64_t e0 = from.loader.epoch; e0 < last; ++e0) {
    int64_t epoch = e0 + 1;
    progress.begin_epoch();
    std::map<std::string, Tensor> sums;  // float64, on the device
    int64_t steps = 0, first_unchecked = 1;
    std::map<std::string, double> carried;  // the sums of this epoch's steps before a resume
    if (e0 == from.loader.epoch) restore_epoch_sums(from, dir.last_checkpoint(), carried, steps);
    // The sums read back (one host round trip), failing if a value diverged
    // in the steps since the last check: run before every checkpoint.
    auto checked_sums = [&](int64_t through) {
      std::map<std::string, double> host = method::read_values(sums);
      if (auto* bad = first_non_finite(host))
        fail(opt.stage, ": ", bad->first, " became ", bad->second, " at epoch ", epoch, " between step ",
             first_unchecked, " and step ", through, "; ", kept_checkpoint(dir), opt.detect_anomaly ? "" : kAnomalyHint);
      first_unchecked = through + 1;
      return host;
    };
    data::Batch batch;
    while (loader.next(batch)) {
      double rate = lr(epoch, batch.index, nb);
      sgd.set_lr(rate);
      method::StepValues values;
      try {
        values = step(batch, global_step);
      } catch (const AnomalyError& e) {  // (--detect-anomaly) the op that first made inf/NaN
        fail(opt.stage, ": ", e.what(), ", at epoch ", epoch, " step ", batch.index + 1, "; ", kept_checkpoint(dir));
      }
      ++global_step;
      // In anomaly mode the state is checked after every step too: an
      // optimizer update or a running statistic is not a recorded op.
      if (opt.detect_anomaly)
        check_state_finite(model, sgd, opt, dir, epoch, global_step, "after this step's update");
      ++steps;
      {
        NoGradGuard no_grad;
        for (auto& [k, v] : values) {
          Tensor x = v.detach().to(DType::Float64);
          auto it = sums.find(k);
          if (it != sums.end())
            sums[k] = ops::add(it->second, x);
          else
            sums[k] = carried.count(k) ? ops::add(x, carried.at(k)) : x.clone();
        }
      }
      if (!warm) {
        allocs_logged = device_raw_allocs();  // the first step's allocations are the warm-up
        warm = true;
      }
      const bool logs = opt.log_every > 0 && (batch.index + 1) % opt.log_every == 0;
      const bool prints = logs || batch.index + 1 == nb;  // (Progress prints an epoch's last step too)
      std::string line;
      if (prints) {
        // The one read of this step: every rank reads the same steps, so all
        // of them stop together on a non-finite value.
        std::map<std::string, double> host = method::read_values(values);
        if (auto* bad = first_non_finite(host))
          fail(opt.stage, ": ", bad->first, " became ", bad->second, " at epoch ", epoch, " step ", batch.index + 1,
               "; ", kept_checkpoint(dir), opt.detect_anomaly ? "" : kAnomalyHint);
        std::ostringstream os;
        nlohmann::json fields{
            {"stage", opt.stage}, {"epoch", epoch}, {"step", global_step}, {"lr", json_number(rate)}};
        for (auto& [k, v] : host) {
          os << k << " " << number_text(v) << "  ";
          fields[k] = json_number(v);
        }
        os << "lr " << number_text(rate);
        line = os.str();
        if (logs) {
          const int64_t syncs = counters::host_syncs(), allocs = device_raw_allocs();
          fields["host_syncs"] = syncs - syncs_logged;
          fields["device_allocs"] = allocs - allocs_logged;
          syncs_logged = syncs;
          allocs_logged = allocs;
          if (writer()) dir.log_metrics(fields);
        }
      }
      if (writer()) progress.step(epoch, batch.index, batch.size(), line, opt.log_every, batch.index + 1 == nb);
      if (opt.save_steps > 0 && global_step % opt.save_steps == 0 && batch.index + 1 < nb) {
        save(dir, model, sgd, opt, with_epoch_sums(metadata, checked_sums(batch.index + 1), steps), {e0, batch.index + 1},
             global_step, dir.last_checkpoint());
      }
      if (batch.index + 1 < nb)  // (after an epoch's last step, the epoch's end comes first)
        if (int sig = stop_requested()) {
          save(dir, model, sgd, opt, with_epoch_sums(metadata, checked_sums(batch.index + 1), steps),
               {e0, batch.index + 1}, global_step, dir.last_checkpoint());
          throw_interrupted(opt, sig, global_step, dir);
        }
    }
    std::map<std::string, double> totals = checked_sums(nb);  // the epoch's one read of its sums
    nlohmann::json summary{
        {"stage", opt.stage}, {"epoch", epoch}, {"epoch_seconds", json_number(progress.epoch_seconds())}};
    for (auto& [k, v] : totals) summary["mean_" + k] = json_number(v / static_cast<double>(std::max<int64_t>(steps, 1)));
    // The run's arithmetic (--precision) beside its epoch figures, so a metrics file says how they were made.
    if (auto p = metadata.find("precision"); p != metadata.end()) summary["precision"] = p->second;
    if (writer()) dir.log_metrics(summary);
    if (opt.on_epoch_end)
      for (auto& [k, v] : opt.on_epoch_end(epoch)) metadata[k] = v;
    save(dir, model, sgd, opt, metadata, {epoch, 0}, global_step, dir.last_checkpoint());
    if (opt.save_epoch > 0 && epoch % opt.save_epoch == 0)
      save(dir, model, sgd, opt, metadata, {epoch, 0}, global_step, dir.epoch_checkpoint(epoch));
    if (writer())
      std::fprintf(stderr, "[%s] epoch %lld done in %.1fs; checkpoint %s\n", opt.stage.c_str(),
                 static_cast<long long>(epoch), progress.epoch_seconds(), dir.last_checkpoint().c_str());
    if (int sig = stop_requested()) throw_interrupted(opt, sig, global_step, dir);
  }
}

}  // namespace advcl::cli
