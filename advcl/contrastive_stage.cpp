#include "advcl/contrastive_stage.h"

#include <cstdio>

#include "advcl/model_io.h"

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
  app.add_option("--save-epoch", o.save_epoch, "keep epoch_N.safetensors every N epochs (0: never)")
      ->capture_default_str();
  app.add_option("--save-steps", o.save_steps, "also checkpoint every N steps inside an epoch (0: epoch ends only)");
  app.add_option("--stop-epoch", o.stop_epoch, "stop after this epoch (the schedule still spans --epoch); rerun to resume");
  app.add_flag("--no-resume", o.no_resume, "start afresh even if --out holds a checkpoint");
}

ContrastiveRun start_run(const std::string& stage, const CLI::App& app, const ContrastiveOptions& o) {
  ContrastiveRun r;
  r.stage = stage;
  apply_threads(o.common);
  r.dir = std::make_unique<RunDir>(o.common.out);
  r.dir->write_text("run.json", options_json(app) + "\n");
  r.data = load_data(o.common.data, "train");
  return r;
}

void build_run(ContrastiveRun& r, const CLI::App& app, const ContrastiveOptions& o, nn::ResNetOptions mo,
               std::shared_ptr<const data::SampleTransform> views) {
  mo.width = o.width;
  mo.in_channels = r.data->channels;
  mo.seed = o.common.seed;
  r.model_options = mo;
  r.model = std::make_unique<nn::ResNet18>(mo);
  r.sgd = std::make_unique<nn::Sgd>(r.model->named_parameters(), nn::SgdOptions{o.lr, o.momentum, o.weight_decay});
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.common.seed;
  lo.workers = o.common.workers;
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
  r.loop.metadata = model_metadata(mo);
  r.loop.metadata["options"] = options_json(app);
  r.from = resume_if_any(*r.dir, *r.model, *r.sgd, r.stage, !o.no_resume);
  std::fprintf(stderr, "%s: ResNet-18 width %lld, %lld epochs x %lld steps of %lld images\n", r.stage.c_str(),
               static_cast<long long>(o.width), static_cast<long long>(o.epochs),
               static_cast<long long>(r.loader->batches_per_epoch()), static_cast<long long>(o.batch_size));
}

void finish_run(ContrastiveRun& r, const StepFn& step) {
  const nn::CosineWarmupSchedule& s = r.schedule;
  run_training(*r.dir, *r.model, *r.sgd, *r.loader, r.loop,
               [&s](int64_t e, int64_t b, int64_t nb) { return s.lr_at(e, b, nb); }, step, r.from);
  std::printf("%s encoder: %s\n", r.stage.c_str(), r.dir->last_checkpoint().c_str());
}

}  // namespace advcl::cli
