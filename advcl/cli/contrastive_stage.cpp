#include "advcl/cli/contrastive_stage.h"

#include <cstdio>

#include "advcl/run/model_io.h"
#include "advcl/run/resume_check.h"
#include "advcl/step/data_parallel.h"
#include "engine/autograd.h"
#include "nn/parallel/communicator.h"
#include "nn/parallel/consistency.h"
#include "nn/parallel/sync_batch_norm.h"

namespace advcl::cli {

void add_contrastive_options(CLI::App& app, ContrastiveOptions& o) {
  add_common_options(app, o.common);
  app.add_option("--epoch", o.epochs, "epochs")->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "batch size")->capture_default_str();
  app.add_option("--learning_rate", o.lr,
                 "peak learning rate (cosine to lr/1000; linear warm-up over 10 epochs when batch > 256)")
      ->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--weight_decay", o.weight_decay, "weight decay")->capture_default_str();
  app.add_option("--width", o.width, "ResNet-18 width (64 = the paper)")->capture_default_str();
  add_training_run_options(app, o.save_epoch, o.save_steps, o.no_resume, o.detect_anomaly, o.compute);
  app.add_option("--stop-epoch", o.stop_epoch, "stop after this epoch (the schedule still spans --epoch); rerun to resume");
  app.add_flag("--resume", o.resume,
               "continue from --out's checkpoint (the default when one exists; with --resume, none is an error)");
  app.add_flag("--no-sync-bn", o.no_sync_bn, "under mpirun: keep batch-norm statistics per rank (default: synchronised)");
  app.add_option("--dist-check-every", o.check_every, "under mpirun: check every N steps that all ranks hold the same weights");
}

ContrastiveRun start_run(const std::string& stage, const CLI::App& app, const ContrastiveOptions& o) {
  ContrastiveRun r;
  r.stage = stage;
  apply_threads(o.common);
  r.dir = std::make_unique<RunDir>(o.common.out);
  // Before anything is written there: the folder's run is this stage's and
  // has this run's options (or --no-resume starts afresh).
  check_resume(*r.dir, stage, options_json(app), o.resume, o.no_resume);
  if (dist::world().is_root()) r.dir->write_text("run.json", options_json(app) + "\n");
  r.data = load_data(o.common.data, "train");
  return r;
}

void build_run(ContrastiveRun& r, const CLI::App& app, const ContrastiveOptions& o, method::ContrastiveModelOptions mo,
               std::shared_ptr<const data::SampleTransform> views) {
  dist::Communicator& comm = dist::world();
  nn::ResNetOptions& backbone = mo.backbone;
  backbone.width = o.width;
  backbone.in_channels = r.data->channels;
  backbone.seed = o.common.seed;
  if (comm.distributed() && !o.no_sync_bn) {
    if (backbone.bn_group_size > 0)
      fail("--bn-group-size and synchronised batch norm exclude each other; add --no-sync-bn");
    backbone.bn_sync = dist::make_batch_norm_sync();
  }
  r.model_options = mo;
  r.model = std::make_unique<method::ContrastiveModel>(mo);
  const ComputeSetup compute = resolve_compute(o.compute);  // under mpirun, "cuda" is the rank's local GPU
  r.device = compute.device;
  r.precision = compute.precision;
  r.autocast = compute.autocast;
  r.model->to(r.device);
  r.sgd = std::make_unique<nn::Sgd>(r.model->named_parameters(), nn::SgdOptions{o.lr, o.momentum, o.weight_decay});
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.common.seed;
  lo.workers = o.common.workers;
  // --batch-size is the global batch; each rank takes its shard of it.
  lo = shard_training_loader(lo, r.data->n, "--batch-size", comm);
  r.loader = std::make_unique<data::BatchLoader>(r.data, std::move(views), lo);
  r.schedule.lr = o.lr;
  r.schedule.epochs = o.epochs;
  r.schedule.warm = o.batch_size > nn::kWarmupBatchThreshold;
  r.loop.stage = r.stage;
  r.loop.epochs = o.epochs;
  r.loop.save_epoch = o.save_epoch;
  r.loop.save_steps = o.save_steps;
  r.loop.log_every = o.common.log_every;
  r.loop.stop_epoch = o.stop_epoch;
  r.loop.detect_anomaly = o.detect_anomaly;
  set_detect_anomaly(o.detect_anomaly);
  r.loop.metadata = model_metadata(mo);
  r.loop.metadata["options"] = options_json(app);
  r.loop.metadata["precision"] = r.precision;
  r.from = resume_if_any(*r.dir, *r.model, *r.sgd, r.stage, !o.no_resume);
  if (comm.is_root())
    std::fprintf(stderr, "%s: ResNet-18 width %lld on %s, %lld epochs x %s\n", r.stage.c_str(),
                 static_cast<long long>(o.width), r.device.str().c_str(), static_cast<long long>(o.epochs),
                 steps_text(r.data->n, o.batch_size, r.loader->batches_per_epoch()).c_str());
  if (comm.distributed() && comm.is_root())
    std::fprintf(stderr, "%s: data parallel over %d ranks, %lld images each per step, batch norm %s\n",
                 r.stage.c_str(), comm.size(), static_cast<long long>(lo.batch_size),
                 backbone.bn_sync ? "synchronised" : "per rank");
}

void finish_run(ContrastiveRun& r, const ContrastiveOptions& o, const StepFn& step) {
  const nn::CosineWarmupSchedule& s = r.schedule;
  StepFn checked = step;
  if (o.check_every > 0 && dist::world().distributed())
    checked = [&](const data::Batch& b, int64_t global_step) {
      auto values = step(b, global_step);
      if ((global_step + 1) % o.check_every == 0)
        dist::check_consistent(r.model->state_dict(), "after step " + std::to_string(global_step + 1));
      return values;
    };
  run_training(*r.dir, *r.model, *r.sgd, *r.loader, r.loop,
               [&s](int64_t e, int64_t b, int64_t nb) { return s.lr_at(e, b, nb); }, checked, r.from);
  if (dist::world().is_root()) std::printf("%s encoder: %s\n", r.stage.c_str(), r.dir->last_checkpoint().c_str());
}

}  // namespace advcl::cli
