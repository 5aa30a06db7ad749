// `advcl finetune`: SLF, ALF or AFF finetuning of a pretrained encoder
// (docs/method.md section 12), with SA and RA on the test split after every
// (--eval-every) epoch, the best-RA and the last epoch in results.json.
//
// Under mpirun (docs/distributed.md): --batch-size is the global batch, each
// rank trains on its shard with the gradients averaged before every step
// (one step context for the run; AFF with synchronised batch norm), evaluates its
// shard of the test set with the counts summed, and rank 0 alone writes
// checkpoints, metrics, results.json and progress.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "advcl/cli/commands.h"
#include "advcl/cli/option_checks.h"
#include "advcl/cli/common_options.h"
#include "advcl/step/data_parallel.h"
#include "advcl/attacks/evaluate.h"
#include "advcl/finetune/finetune.h"
#include "advcl/finetune/finetune_model.h"
#include "advcl/run/finetune_results.h"
#include "advcl/run/json_out.h"
#include "advcl/run/model_io.h"
#include "advcl/run/resume_check.h"
#include "advcl/run/train_loop.h"
#include "nn/parallel/sync_batch_norm.h"
#include "engine/ops.h"
#include "nn/schedule.h"

namespace advcl::cli {

namespace {

constexpr const char* kHistoryKey = "finetune.evals";
constexpr const char* kPretrainedKey = "finetune.pretrained";

struct ModeDefaults {
  double lr;
  int64_t batch_size;
};
// docs/method.md section 12: SLF and ALF train the classifier at lr 0.01,
// batch 512; AFF trains everything at lr 0.1, batch 128.
ModeDefaults defaults_for(method::FinetuneMode m) {
  return m == method::FinetuneMode::Aff ? ModeDefaults{0.1, 128} : ModeDefaults{0.01, 512};
}

std::string attack_text(const method::EvalOptions& e, double eps255, double step255) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "PGD-%d, eps %g/255, step %g/255, random start", e.steps, eps255, step255);
  return buf;
}

}  // namespace

int cmd_finetune(int argc, char** argv) {
  CLI::App app{"Finetune a pretrained encoder: SLF (linear, clean), ALF (linear, PGD-10), AFF (full, TRADES)",
               "advcl finetune"};
  CommonOptions common;
  add_common_options(app, common);
  std::string mode_str, ckpt;
  int bn_set = -1;
  int64_t epochs = 25, batch_size = 0, eval_every = 1, test_limit = 0, eval_batch = 256, save_epoch = 0,
          save_steps = 0;
  double lr = 0, momentum = 0.9, weight_decay = 2e-4, gamma = 0.1, epsilon = 8, step_size = 2;
  std::vector<int64_t> milestones{15, 20};
  int eval_steps = 20;
  bool no_resume = false, no_sync_bn = false, detect_anomaly = false;
  DeviceOptions compute;
  method::FinetuneStepOptions step_opt;
  app.add_option("--mode", mode_str, "slf, alf or aff")->required();
  app.add_option("--ckpt", ckpt, "pretrained checkpoint (`advcl pretrain` or `advcl simclr`)")->required();
  app.add_option("--bn-set", bn_set, "BN statistic set of the checkpoint to use (default: 1, `pgd`, when it has several)");
  app.add_option("--epochs", epochs, "epochs")->capture_default_str();
  app.add_option("--batch-size", batch_size,
                 "training batch size (default: 512 for slf/alf, 128 for aff; under mpirun: the global batch)");
  app.add_option("--lr", lr, "learning rate (default: 0.01 for slf/alf, 0.1 for aff)");
  app.add_option("--momentum", momentum, "SGD momentum")->capture_default_str();
  app.add_option("--weight_decay", weight_decay, "weight decay")->capture_default_str();
  app.add_option("--milestones", milestones, "epochs after which the lr is multiplied by --gamma")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--gamma", gamma, "lr factor at each milestone")->capture_default_str();
  app.add_option("--beta", step_opt.beta, "TRADES weight of the KL term (aff)")->capture_default_str();
  app.add_option("--epsilon", epsilon, "attack radius, in 1/255 units (training and evaluation)")->capture_default_str();
  app.add_option("--step-size", step_size, "attack step, in 1/255 units")->capture_default_str();
  app.add_option("--attack-steps", step_opt.attack_steps, "training attack iterations (alf, aff)")->capture_default_str();
  app.add_option("--eval-steps", eval_steps, "PGD iterations of the RA evaluation")->capture_default_str();
  app.add_option("--eval-every", eval_every, "evaluate SA and RA every N epochs (the last epoch always)")
      ->capture_default_str();
  app.add_option("--test-limit", test_limit, "evaluate on the first N test images only (0: all)")->capture_default_str();
  app.add_option("--eval-batch-size", eval_batch, "test batch size (under mpirun: split over the ranks)")
      ->capture_default_str();
  app.add_option("--save-epoch", save_epoch, "keep epoch_N.safetensors every N epochs (0: never)");
  app.add_option("--save-steps", save_steps, "also checkpoint every N steps inside an epoch (0: epoch ends only)");
  app.add_flag("--no-resume", no_resume, "start afresh even if --out holds a checkpoint");
  app.add_flag("--detect-anomaly", detect_anomaly,
               "check every op's result for inf/NaN and name the first op that made one (slow: for a diverged run)");
  add_device_options(app, compute);
  app.add_flag("--no-sync-bn", no_sync_bn, "aff under mpirun: keep batch-norm statistics per rank (default: synchronised)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  check_options(app);  // every shared option's value, before any work (advcl/cli/option_checks.h)
  step_opt.mode = method::parse_finetune_mode(mode_str);
  const char* mode = method::finetune_mode_name(step_opt.mode);
  ModeDefaults def = defaults_for(step_opt.mode);
  if (lr == 0) lr = def.lr;
  if (batch_size == 0) batch_size = def.batch_size;
  if (!(lr > 0)) fail("--lr must be positive, got ", lr);
  if (batch_size < 1) fail("--batch-size must be positive, got ", batch_size);
  if (eval_batch < 1) fail("--eval-batch-size must be positive, got ", eval_batch);
  if (epochs < 1) fail("--epochs must be at least 1, got ", epochs);
  if (eval_every < 1) fail("--eval-every must be at least 1, got ", eval_every);
  if (eval_steps < 0 || step_opt.attack_steps < 0) fail("--eval-steps and --attack-steps must be >= 0");
  if (!(epsilon >= 0) || !(step_size >= 0)) fail("--epsilon and --step-size must be >= 0");
  step_opt.epsilon = epsilon / 255;
  step_opt.step = step_size / 255;
  {
    // Finetuning writes last.safetensors and epoch_N.safetensors into --out:
    // in --ckpt's own folder it would overwrite the pretrained run it reads
    // (with --no-resume), or try to resume from it. Refused before the
    // folder is touched.
    namespace fs = std::filesystem;
    fs::path ckpt_dir = fs::path(ckpt).parent_path();
    if (ckpt_dir.empty()) ckpt_dir = ".";
    std::error_code ec;
    if (fs::exists(common.out, ec) && fs::equivalent(ckpt_dir, common.out, ec))
      fail("--out ", common.out, " is the folder of --ckpt ", ckpt,
           ": finetuning writes its checkpoints there and would overwrite the pretrained run it reads; "
           "choose another --out");
  }
  apply_threads(common);
  dist::Communicator& comm = dist::world();
  const bool root = comm.is_root();  // writes files and prints
  RunDir dir(common.out);
  const std::string stage = std::string("finetune_") + mode;
  // Before anything is written there: the folder's run is this stage's, with
  // this run's options (or --no-resume starts afresh).
  check_resume(dir, stage, options_json(app), false, no_resume);
  if (root) dir.write_text("run.json", options_json(app) + "\n");

  auto train_ds = load_data(common.data, common.data.split);
  DataOptions test_data = common.data;
  test_data.limit = test_limit;
  test_data.per_class = 0;
  auto test_ds = load_data(test_data, "test");
  int64_t classes = train_ds->num_classes;
  if (classes < 2) fail("--data: the training split has ", classes, " classes; finetuning needs labelled data");
  if (test_ds->num_classes != classes)
    fail("--data: the test split has ", test_ds->num_classes, " classes, the training split ", classes);

  // AFF trains the encoder in train mode: its batch norms take the global
  // batch's statistics. (SLF and ALF keep it in eval mode: nothing to sync.)
  std::shared_ptr<const nn::BatchNormSync> bn_sync;
  if (comm.distributed() && step_opt.mode == method::FinetuneMode::Aff && !no_sync_bn)
    bn_sync = dist::make_batch_norm_sync();
  std::unique_ptr<nn::ResNet18> encoder = load_encoder(ckpt, bn_set, bn_sync);
  if (encoder->options().in_channels != train_ds->channels)
    fail("--ckpt ", ckpt, ": the encoder takes ", encoder->options().in_channels, "-channel images, --data has ",
         train_ds->channels, " (see --channels)");
  method::FinetuneModel model(std::move(encoder), classes, common.seed);
  const ComputeSetup setup = resolve_compute(compute);
  const Device device = setup.device;  // where the model lives (batches follow it)
  model.to(device);
  // SLF and ALF train the classifier alone (the encoder stays frozen); AFF trains everything.
  nn::StateDict trained =
      step_opt.mode == method::FinetuneMode::Aff ? model.named_parameters() : model.classifier.named_parameters();
  nn::Sgd sgd(trained, {lr, momentum, weight_decay});
  model.eval();

  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.seed = common.seed;
  lo.workers = common.workers;
  data::LoaderOptions to = lo;
  to.batch_size = eval_batch;
  lo = shard_training_loader(lo, train_ds->n, "--batch-size", comm);
  data::BatchLoader loader(train_ds, std::make_shared<data::CropFlip>(common.data.size, 4), lo);
  data::BatchLoader test_loader(test_ds, std::make_shared<data::ToFloat>(), shard_eval_loader(to, comm));

  method::EvalOptions eval;
  eval.epsilon = step_opt.epsilon;
  eval.step = step_opt.step;
  eval.steps = eval_steps;
  eval.seed = common.seed;
  eval.device = device;
  method::FinetuneReport report;
  report.mode = mode;
  report.pretrained = ckpt;
  report.finetuned = dir.last_checkpoint();
  report.epochs = epochs;
  report.attack = attack_text(eval, epsilon, step_size);
  report.options_json = options_json(app);
  report.settings = {{"lr", json_number(lr)},
                     {"batch_size", batch_size},
                     {"milestones", milestones},
                     {"gamma", json_number(gamma)},
                     {"momentum", json_number(momentum)},
                     {"weight_decay", json_number(weight_decay)},
                     {"epsilon", json_number(step_opt.epsilon)},
                     {"step", json_number(step_opt.step)},
                     {"attack_steps", step_opt.attack_steps},
                     {"beta", json_number(step_opt.beta)},
                     {"eval_steps", eval_steps},
                     {"classes", classes},
                     {"trained", step_opt.mode == method::FinetuneMode::Aff ? "all" : "classifier"}};

  LoopOptions loop;
  loop.stage = stage;
  loop.epochs = epochs;
  loop.save_epoch = save_epoch;
  loop.save_steps = save_steps;
  loop.log_every = common.log_every;
  loop.detect_anomaly = detect_anomaly;
  set_detect_anomaly(detect_anomaly);
  loop.metadata = method::finetune_metadata(model);
  loop.metadata["options"] = report.options_json;
  loop.metadata[kPretrainedKey] = ckpt;
  loop.metadata["precision"] = setup.precision;
  ResumePoint from = resume_if_any(dir, model, sgd, stage, !no_resume);
  method::FinetuneHistory history;
  if (from.resumed) {
    auto h = from.metadata.find(kHistoryKey);
    if (h != from.metadata.end()) history = method::FinetuneHistory::decode(h->second, dir.last_checkpoint());
  }
  report.epochs_done = from.loader.epoch;
  loop.metadata[kHistoryKey] = history.encode();
  if (root)
    std::fprintf(stderr, "finetune %s: %lld classes, %lld epochs x %s, lr %g, %s params trained\n", mode,
                 static_cast<long long>(classes), static_cast<long long>(epochs),
                 steps_text(train_ds->n, batch_size, loader.batches_per_epoch()).c_str(), lr,
                 step_opt.mode == method::FinetuneMode::Aff ? "all" : "classifier");
  if (comm.distributed() && root)
    std::fprintf(stderr, "finetune %s: data parallel over %d ranks, %lld images each per step%s\n", mode, comm.size(),
                 static_cast<long long>(lo.batch_size),
                 step_opt.mode != method::FinetuneMode::Aff ? "" : bn_sync ? ", batch norm synchronised"
                                                                            : ", batch norm per rank");

  method::LogitsFn logits = [&](const Tensor& x) { return model.logits(x); };
  loop.on_epoch_end = [&](int64_t epoch) -> std::map<std::string, std::string> {
    report.epochs_done = epoch;
    if (epoch % eval_every != 0 && epoch != epochs) return {};
    model.eval();
    auto t0 = std::chrono::steady_clock::now();
    // Each rank attacks its shard of the test set; the summed counts are
    // one process's (advcl/attacks/evaluate.h).
    method::EvalCounts c = method::sum_over_ranks(method::evaluate_pgd(logits, test_loader, eval), comm);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    method::EpochEval e{epoch, c.n, c.sa(), c.ra(), secs};
    history.add(e);
    if (!root) return {{kHistoryKey, history.encode()}};
    std::fprintf(stderr, "[%s] epoch %lld: SA %.2f%%  RA %.2f%%  (%lld test images, %.1fs)\n", stage.c_str(),
                 static_cast<long long>(epoch), 100 * e.sa, 100 * e.ra, static_cast<long long>(e.n), e.seconds);
    dir.log_metrics({{"stage", stage},
                     {"epoch", epoch},
                     {"test_sa", json_number(e.sa)},
                     {"test_ra", json_number(e.ra)},
                     {"test_images", e.n},
                     {"eval_seconds", json_number(e.seconds)}});
    dir.write_text("results.json", method::results_json(history, report));
    return {{kHistoryKey, history.encode()}};
  };
  // Data parallelism for the whole run: the gradients of what trains averaged over the ranks.
  method::StepContext ctx(sgd.params(), comm);
  auto step = [&](const data::Batch& b, int64_t global_step) {
    // Attack starts keyed by step and by the image's position in the global
    // batch, so N ranks draw the noise one process draws.
    RngKey key{common.seed, static_cast<uint32_t>(RngPurpose::AttackStart), static_cast<uint32_t>(global_step),
               static_cast<uint32_t>(global_batch_offset(loader, b))};
    return method::finetune_step(model, sgd, data::upload(b.images(), device), data::upload(b.labels, device),
                                 step_opt, key, ctx);
  };
  run_training(
      dir, model, sgd, loader, loop,
      [&](int64_t e, int64_t, int64_t) { return nn::step_decay_lr(lr, e - 1, milestones, gamma); }, step, from);

  if (!root) return 0;
  dir.write_text("results.json", method::results_json(history, report));
  std::printf("%s", method::results_table(history, report).c_str());
  std::printf("results: %s\nfinetuned model: %s\n", dir.file("results.json").c_str(), dir.last_checkpoint().c_str());
  return 0;
}

}  // namespace advcl::cli
