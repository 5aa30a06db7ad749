// `advcl simclr`: standard (non-adversarial) SimCLR pretraining, the encoder
// whose features `advcl pseudo-labels` clusters. NT-Xent loss over the two
// views (SupCon's SimCLR case with base temperature = temperature).
#include <cstdio>

#include "advcl/advcl_views.h"
#include "advcl/commands.h"
#include "advcl/common_options.h"
#include "advcl/losses.h"
#include "advcl/model_io.h"
#include "advcl/train_loop.h"
#include "engine/ops.h"
#include "nn/schedule.h"

namespace advcl::cli {

int cmd_simclr(int argc, char** argv) {
  CLI::App app{"SimCLR pretraining (the standard contrastive encoder used to make pseudo-labels)", "advcl simclr"};
  CommonOptions common;
  add_common_options(app, common);
  int64_t epochs = 100, batch_size = 512, width = 64, save_epoch = 0, save_steps = 0;
  double lr = 0.5, momentum = 0.9, weight_decay = 1e-4, temperature = 0.5;
  bool no_resume = false;
  int64_t stop_epoch = 0;
  app.add_option("--epoch", epochs, "epochs")->capture_default_str();
  app.add_option("--batch-size", batch_size, "batch size")->capture_default_str();
  app.add_option("--learning_rate", lr, "peak learning rate (cosine schedule)")->capture_default_str();
  app.add_option("--momentum", momentum, "SGD momentum")->capture_default_str();
  app.add_option("--weight_decay", weight_decay, "weight decay")->capture_default_str();
  app.add_option("--nce_t", temperature, "temperature of the NT-Xent loss")->capture_default_str();
  app.add_option("--width", width, "ResNet-18 width")->capture_default_str();
  app.add_option("--save-epoch", save_epoch, "keep epoch_N.safetensors every N epochs (0: never)");
  app.add_option("--save-steps", save_steps, "also checkpoint every N steps inside an epoch");
  app.add_flag("--no-resume", no_resume, "start afresh even if --out holds a checkpoint");
  app.add_option("--stop-epoch", stop_epoch, "stop after this epoch (the schedule still spans --epoch); rerun to resume");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  apply_threads(common);
  RunDir dir(common.out);
  dir.write_text("run.json", options_json(app) + "\n");
  auto ds = load_data(common.data, "train");

  nn::ResNetOptions mo;
  mo.width = width;
  mo.in_channels = ds->channels;
  mo.num_bn_sets = 1;
  mo.pseudo_classes.clear();
  mo.seed = common.seed;
  nn::ResNet18 model(mo);
  nn::Sgd sgd(model.named_parameters(), {lr, momentum, weight_decay});
  views::SimclrOptions vo;
  vo.size = common.data.size;
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.seed = common.seed;
  lo.workers = common.workers;
  data::BatchLoader loader(ds, views::make_simclr_views(vo), lo);

  nn::CosineWarmupSchedule schedule;
  schedule.lr = lr;
  schedule.epochs = epochs;
  schedule.warm = batch_size > nn::kWarmupBatchThreshold;
  LoopOptions loop;
  loop.stage = "simclr";
  loop.epochs = epochs;
  loop.save_epoch = save_epoch;
  loop.save_steps = save_steps;
  loop.log_every = common.log_every;
  loop.stop_epoch = stop_epoch;
  loop.metadata = model_metadata(mo);
  loop.metadata["options"] = options_json(app);
  ResumePoint from = resume_if_any(dir, model, sgd, "simclr", !no_resume);

  auto step = [&](const data::Batch& b, int64_t) {
    model.train();
    sgd.zero_grad();
    int64_t B = b.size();
    Tensor f = model.features(ops::cat({b.views[0], b.views[1]}), nn::BnSets::repeat(0, 2));
    Tensor p = model.project(f, 2);
    Tensor loss = method::supcon_loss({ops::slice(p, 0, B), ops::slice(p, B, 2 * B)}, temperature, temperature);
    backward(loss);
    sgd.step();
    return std::map<std::string, double>{{"loss", loss.item()}};
  };
  run_training(dir, model, sgd, loader, loop, [&](int64_t e, int64_t b, int64_t nb) { return schedule.lr_at(e, b, nb); },
               step, from);
  std::printf("SimCLR encoder: %s\n", dir.last_checkpoint().c_str());
  return 0;
}

}  // namespace advcl::cli
