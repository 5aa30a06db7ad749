// `advcl pretrain`: AdvCL pretraining (SPEC.md). Option names follow the
// reference's where it has them (--epoch, --batch-size, --learning_rate,
// --weight_decay, --nce_t, --ce_weight, --epsilon, --iter, --radius).
#include <cstdio>

#include "advcl/advcl_step.h"
#include "advcl/advcl_views.h"
#include "advcl/commands.h"
#include "advcl/common_options.h"
#include "advcl/model_io.h"
#include "advcl/pseudo_labels.h"
#include "advcl/train_loop.h"
#include "nn/schedule.h"

namespace advcl::cli {

int cmd_pretrain(int argc, char** argv) {
  CLI::App app{"AdvCL pretraining: adversarial contrastive learning with high-frequency views and pseudo-labels",
               "advcl pretrain"};
  CommonOptions common;
  add_common_options(app, common);
  std::string labels_path;
  int64_t epochs = 1000, batch_size = 512, width = 64, save_epoch = 100, save_steps = 0, bn_group = 0;
  double lr = 0.5, momentum = 0.9, weight_decay = 1e-4, epsilon = 8, step_size = 2;
  method::AdvclStepOptions step_opt;
  bool no_resume = false;
  int64_t stop_epoch = 0;
  app.add_option("--labels", labels_path, "pseudo-labels: from `advcl pseudo-labels`, or the reference's "
                                          "imagenet_clPretrain_pseudo_labels.pkl")->required();
  app.add_option("--epoch", epochs, "epochs")->capture_default_str();
  app.add_option("--batch-size", batch_size, "batch size")->capture_default_str();
  app.add_option("--learning_rate", lr, "peak learning rate (cosine to lr/1000, warm-up over 10 epochs when batch > 256)")
      ->capture_default_str();
  app.add_option("--momentum", momentum, "SGD momentum")->capture_default_str();
  app.add_option("--weight_decay", weight_decay, "weight decay")->capture_default_str();
  app.add_option("--nce_t", step_opt.temperature, "contrastive temperature")->capture_default_str();
  app.add_option("--ce_weight", step_opt.ce_weight, "weight of the pseudo-label cross-entropy")->capture_default_str();
  app.add_option("--epsilon", epsilon, "attack radius, in 1/255 units")->capture_default_str();
  app.add_option("--step-size", step_size, "attack step, in 1/255 units")->capture_default_str();
  app.add_option("--iter", step_opt.iterations, "attack iterations")->capture_default_str();
  app.add_option("--radius", step_opt.radius, "high-pass radius of the HFC view")->capture_default_str();
  app.add_option("--width", width, "ResNet-18 width (64 = the paper)")->capture_default_str();
  app.add_option("--bn-group-size", bn_group, "batch-norm statistics over groups of N images (0: the whole view)");
  app.add_option("--save-epoch", save_epoch, "keep epoch_N.safetensors every N epochs")->capture_default_str();
  app.add_option("--save-steps", save_steps, "also checkpoint every N steps inside an epoch (0: epoch ends only)");
  app.add_flag("--no-resume", no_resume, "start afresh even if --out holds a checkpoint");
  app.add_option("--stop-epoch", stop_epoch, "stop after this epoch (the schedule still spans --epoch); rerun to resume");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  step_opt.epsilon = epsilon / 255;
  step_opt.step_size = step_size / 255;
  apply_threads(common);
  RunDir dir(common.out);
  dir.write_text("run.json", options_json(app) + "\n");

  auto ds = load_data(common.data, "train");
  method::PseudoLabels labels = method::load_pseudo_labels(labels_path);
  labels.check(ds->n, labels_path);
  std::fprintf(stderr, "pseudo-labels: %s (%s)\n", labels.summary().c_str(), labels.source.c_str());

  nn::ResNetOptions mo;
  mo.width = width;
  mo.in_channels = ds->channels;
  mo.pseudo_classes = labels.ks;
  mo.bn_group_size = bn_group;
  mo.seed = common.seed;
  nn::ResNet18 model(mo);
  nn::Sgd sgd(model.named_parameters(), {lr, momentum, weight_decay});

  views::SimclrOptions vo;
  vo.size = common.data.size;
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.seed = common.seed;
  lo.workers = common.workers;
  data::BatchLoader loader(ds, views::make_advcl_views(vo), lo);

  nn::CosineWarmupSchedule schedule;
  schedule.lr = lr;
  schedule.epochs = epochs;
  schedule.warm = batch_size > nn::kWarmupBatchThreshold;
  LoopOptions loop;
  loop.stage = "pretrain";
  loop.epochs = epochs;
  loop.save_epoch = save_epoch;
  loop.save_steps = save_steps;
  loop.log_every = common.log_every;
  loop.stop_epoch = stop_epoch;
  loop.metadata = model_metadata(mo);
  loop.metadata["options"] = options_json(app);
  ResumePoint from = resume_if_any(dir, model, sgd, "pretrain", !no_resume);
  std::fprintf(stderr, "pretrain: ResNet-18 width %lld, %lld epochs x %lld steps, batch %lld, eps %.0f/255, %d PGD steps\n",
               static_cast<long long>(width), static_cast<long long>(epochs),
               static_cast<long long>(loader.batches_per_epoch()), static_cast<long long>(batch_size), epsilon,
               step_opt.iterations);

  auto step = [&](const data::Batch& b, int64_t global_step) {
    method::AdvclBatch ab{b.views[views::kViewX1], b.views[views::kViewX2], b.views[views::kViewOrg], {}};
    for (size_t h = 0; h < labels.ks.size(); ++h) ab.pseudo.push_back(labels.lookup(h, b.indices));
    RngKey key{common.seed, 0, static_cast<uint32_t>(global_step), 0};
    auto starts = method::advcl_attack_starts(ab.x_org, step_opt, key);
    method::AdvclStepResult r = method::advcl_step(model, sgd, ab, starts, step_opt);
    return std::map<std::string, double>{{"loss", r.loss}, {"contrastive", r.contrastive}, {"ce", r.ce}};
  };
  run_training(dir, model, sgd, loader, loop, [&](int64_t e, int64_t b, int64_t nb) { return schedule.lr_at(e, b, nb); },
               step, from);
  std::printf("pretrained encoder: %s\n", dir.last_checkpoint().c_str());
  return 0;
}

}  // namespace advcl::cli
