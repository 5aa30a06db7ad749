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
#include <functional>
#include <map>
#include <memory>
#include <string>
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

// The command line; lr and batch_size stay 0 until the mode's defaults fill them.
struct FinetuneOptions {
  CommonOptions common;
  std::string mode_str, ckpt;
  int bn_set = -1;
  int64_t epochs = 25, batch_size = 0, eval_every = 1, test_limit = 0, eval_batch = 256, save_epoch = 0,
          save_steps = 0;
  double lr = 0, momentum = 0.9, weight_decay = 2e-4, gamma = 0.1, epsilon = 8, step_size = 2;  // (1/255 units)
  std::vector<int64_t> milestones{15, 20};
  int eval_steps = 20;
  bool no_resume = false, no_sync_bn = false, detect_anomaly = false;
  DeviceOptions compute;
  method::FinetuneStepOptions step;  // mode, attack (in [0, 1] units once checked), beta
  bool aff() const { return step.mode == method::FinetuneMode::Aff; }
};

void add_finetune_options(CLI::App& app, FinetuneOptions& o) {
  add_common_options(app, o.common);
  app.add_option("--mode", o.mode_str, "slf, alf or aff")->required();
  app.add_option("--ckpt", o.ckpt, "pretrained checkpoint (`advcl pretrain` or `advcl simclr`)")->required();
  app.add_option("--bn-set", o.bn_set, "BN statistic set of the checkpoint to use (default: 1, `pgd`, when it has several)");
  app.add_option("--epochs", o.epochs, "epochs")->capture_default_str();
  app.add_option("--batch-size", o.batch_size,
                 "training batch size (default: 512 for slf/alf, 128 for aff; under mpirun: the global batch)");
  app.add_option("--lr", o.lr, "learning rate (default: 0.01 for slf/alf, 0.1 for aff)");
  app.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--weight_decay", o.weight_decay, "weight decay")->capture_default_str();
  app.add_option("--milestones", o.milestones, "epochs after which the lr is multiplied by --gamma")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--gamma", o.gamma, "lr factor at each milestone")->capture_default_str();
  app.add_option("--beta", o.step.beta, "TRADES weight of the KL term (aff)")->capture_default_str();
  app.add_option("--epsilon", o.epsilon, "attack radius, in 1/255 units (training and evaluation)")->capture_default_str();
  app.add_option("--step-size", o.step_size, "attack step, in 1/255 units")->capture_default_str();
  app.add_option("--attack-steps", o.step.attack_steps, "training attack iterations (alf, aff)")->capture_default_str();
  app.add_option("--eval-steps", o.eval_steps, "PGD iterations of the RA evaluation")->capture_default_str();
  app.add_option("--eval-every", o.eval_every, "evaluate SA and RA every N epochs (the last epoch always)")
      ->capture_default_str();
  app.add_option("--test-limit", o.test_limit, "evaluate on the first N test images only (0: all)")->capture_default_str();
  app.add_option("--eval-batch-size", o.eval_batch, "test batch size (under mpirun: split over the ranks)")
      ->capture_default_str();
  add_training_run_options(app, o.save_epoch, o.save_steps, o.no_resume, o.detect_anomaly, o.compute);
  app.add_flag("--no-sync-bn", o.no_sync_bn, "aff under mpirun: keep batch-norm statistics per rank (default: synchronised)");
}

// Finetuning writes last.safetensors and epoch_N.safetensors into --out: in
// --ckpt's own folder it would overwrite the pretrained run it reads (with
// --no-resume), or try to resume from it. Refused before the folder is touched.
void refuse_out_in_ckpt_folder(const FinetuneOptions& o) {
  namespace fs = std::filesystem;
  fs::path ckpt_dir = fs::path(o.ckpt).parent_path();
  if (ckpt_dir.empty()) ckpt_dir = ".";
  std::error_code ec;
  if (fs::exists(o.common.out, ec) && fs::equivalent(ckpt_dir, o.common.out, ec))
    fail("--out ", o.common.out, " is the folder of --ckpt ", o.ckpt,
         ": finetuning writes its checkpoints there and would overwrite the pretrained run it reads; "
         "choose another --out");
}

// The mode and its defaults, then every value's check, before any work.
void resolve_options(const CLI::App& app, FinetuneOptions& o) {
  check_options(app);  // every shared option's value (advcl/cli/option_checks.h)
  o.step.mode = method::parse_finetune_mode(o.mode_str);
  ModeDefaults def = defaults_for(o.step.mode);
  if (o.lr == 0) o.lr = def.lr;
  if (o.batch_size == 0) o.batch_size = def.batch_size;
  if (!(o.lr > 0)) fail("--lr must be positive, got ", o.lr);
  if (o.batch_size < 1) fail("--batch-size must be positive, got ", o.batch_size);
  if (o.eval_batch < 1) fail("--eval-batch-size must be positive, got ", o.eval_batch);
  if (o.epochs < 1) fail("--epochs must be at least 1, got ", o.epochs);
  if (o.eval_every < 1) fail("--eval-every must be at least 1, got ", o.eval_every);
  if (o.eval_steps < 0 || o.step.attack_steps < 0) fail("--eval-steps and --attack-steps must be >= 0");
  if (!(o.epsilon >= 0) || !(o.step_size >= 0)) fail("--epsilon and --step-size must be >= 0");
  o.step.epsilon = o.epsilon / 255;
  o.step.step = o.step_size / 255;
  refuse_out_in_ckpt_folder(o);
}

// Everything a run holds, built in the order of the functions below. The
// epoch-end evaluation and the step refer to its members, so it never moves.
struct FinetuneRun {
  std::string mode, stage;
  bool root = false;  // rank 0: writes files and prints
  std::unique_ptr<RunDir> dir;
  std::shared_ptr<const data::ImageDataset> train_data, test_data;
  int64_t classes = 0;
  std::shared_ptr<const nn::BatchNormSync> bn_sync;  // AFF under mpirun
  std::unique_ptr<method::FinetuneModel> model;
  ComputeSetup setup;  // the device, and bf16's autocast for the run's lifetime
  std::unique_ptr<nn::Sgd> sgd;
  data::LoaderOptions rank_loader;  // this rank's share of the training batch
  std::unique_ptr<data::BatchLoader> loader, test_loader;
  method::EvalOptions eval;
  method::FinetuneReport report;
  method::FinetuneHistory history;
  LoopOptions loop;
  ResumePoint from;
};

// Threads and the output folder: its run is this stage's, with this run's
// options (or --no-resume starts afresh), checked before run.json is written.
void open_run_folder(FinetuneRun& r, const CLI::App& app, const FinetuneOptions& o) {
  r.mode = method::finetune_mode_name(o.step.mode);
  r.stage = "finetune_" + r.mode;
  apply_threads(o.common);
  r.root = dist::world().is_root();
  r.dir = std::make_unique<RunDir>(o.common.out);
  check_resume(*r.dir, r.stage, options_json(app), false, o.no_resume);
  if (r.root) r.dir->write_text("run.json", options_json(app) + "\n");
}

// The training split and the (--test-limit) test split, with the same classes.
void load_splits(FinetuneRun& r, const FinetuneOptions& o) {
  r.train_data = load_data(o.common.data, o.common.data.split);
  DataOptions test = o.common.data;
  test.limit = o.test_limit;
  test.per_class = 0;
  r.test_data = load_data(test, "test");
  r.classes = r.train_data->num_classes;
  if (r.classes < 2) fail("--data: the training split has ", r.classes, " classes; finetuning needs labelled data");
  if (r.test_data->num_classes != r.classes)
    fail("--data: the test split has ", r.test_data->num_classes, " classes, the training split ", r.classes);
}

// The pretrained encoder with a new classifier on the device, and the SGD of
// what trains: the classifier alone for SLF and ALF (the encoder stays
// frozen), everything for AFF.
void build_model(FinetuneRun& r, const FinetuneOptions& o) {
  // AFF trains the encoder in train mode: its batch norms take the global
  // batch's statistics. (SLF and ALF keep it in eval mode: nothing to sync.)
  if (dist::world().distributed() && o.aff() && !o.no_sync_bn) r.bn_sync = dist::make_batch_norm_sync();
  std::unique_ptr<nn::ResNet18> encoder = load_encoder(o.ckpt, o.bn_set, r.bn_sync);
  if (encoder->options().in_channels != r.train_data->channels)
    fail("--ckpt ", o.ckpt, ": the encoder takes ", encoder->options().in_channels, "-channel images, --data has ",
         r.train_data->channels, " (see --channels)");
  r.model = std::make_unique<method::FinetuneModel>(std::move(encoder), r.classes, o.common.seed);
  r.setup = resolve_compute(o.compute);
  r.model->to(r.setup.device);  // (batches follow the model)
  nn::StateDict trained = o.aff() ? r.model->named_parameters() : r.model->classifier.named_parameters();
  r.sgd = std::make_unique<nn::Sgd>(trained, nn::SgdOptions{o.lr, o.momentum, o.weight_decay});
  r.model->eval();
}

// The training loader (crop and flip; this rank's shard of the global batch)
// and the test loader (this rank's shard of the test set).
void make_loaders(FinetuneRun& r, const FinetuneOptions& o) {
  dist::Communicator& comm = dist::world();
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.common.seed;
  lo.workers = o.common.workers;
  data::LoaderOptions to = lo;
  to.batch_size = o.eval_batch;
  r.rank_loader = shard_training_loader(lo, r.train_data->n, "--batch-size", comm);
  r.loader = std::make_unique<data::BatchLoader>(
      r.train_data, std::make_shared<data::CropFlip>(o.common.data.size, 4), r.rank_loader);
  r.test_loader =
      std::make_unique<data::BatchLoader>(r.test_data, std::make_shared<data::ToFloat>(), shard_eval_loader(to, comm));
}

// The evaluation's attack, and what results.json says of the run.
void describe_run(FinetuneRun& r, const CLI::App& app, const FinetuneOptions& o) {
  r.eval.epsilon = o.step.epsilon;
  r.eval.step = o.step.step;
  r.eval.steps = o.eval_steps;
  r.eval.seed = o.common.seed;
  r.eval.device = r.setup.device;
  method::FinetuneReport& report = r.report;
  report.mode = r.mode;
  report.pretrained = o.ckpt;
  report.finetuned = r.dir->last_checkpoint();
  report.epochs = o.epochs;
  report.attack = attack_text(r.eval, o.epsilon, o.step_size);
  report.options_json = options_json(app);
  report.settings = {{"lr", json_number(o.lr)},
                     {"batch_size", o.batch_size},
                     {"milestones", o.milestones},
                     {"gamma", json_number(o.gamma)},
                     {"momentum", json_number(o.momentum)},
                     {"weight_decay", json_number(o.weight_decay)},
                     {"epsilon", json_number(o.step.epsilon)},
                     {"step", json_number(o.step.step)},
                     {"attack_steps", o.step.attack_steps},
                     {"beta", json_number(o.step.beta)},
                     {"eval_steps", o.eval_steps},
                     {"classes", r.classes},
                     {"trained", o.aff() ? "all" : "classifier"}};
}

// The epoch loop's options and the resume point, with the evaluation history
// a resumed run carries in its checkpoint.
void prepare_loop(FinetuneRun& r, const FinetuneOptions& o) {
  LoopOptions& loop = r.loop;
  loop.stage = r.stage;
  loop.epochs = o.epochs;
  loop.save_epoch = o.save_epoch;
  loop.save_steps = o.save_steps;
  loop.log_every = o.common.log_every;
  loop.detect_anomaly = o.detect_anomaly;
  set_detect_anomaly(o.detect_anomaly);
  loop.metadata = method::finetune_metadata(*r.model);
  loop.metadata["options"] = r.report.options_json;
  loop.metadata[kPretrainedKey] = o.ckpt;
  loop.metadata["precision"] = r.setup.precision;
  r.from = resume_if_any(*r.dir, *r.model, *r.sgd, r.stage, !o.no_resume);
  if (r.from.resumed) {
    auto h = r.from.metadata.find(kHistoryKey);
    if (h != r.from.metadata.end()) r.history = method::FinetuneHistory::decode(h->second, r.dir->last_checkpoint());
  }
  r.report.epochs_done = r.from.loader.epoch;
  loop.metadata[kHistoryKey] = r.history.encode();
}

void print_summary(const FinetuneRun& r, const FinetuneOptions& o) {
  if (!r.root) return;
  const char* trained = o.aff() ? "all" : "classifier";
  std::fprintf(stderr, "finetune %s: %lld classes, %lld epochs x %s, lr %g, %s params trained\n", r.mode.c_str(),
               static_cast<long long>(r.classes), static_cast<long long>(o.epochs),
               steps_text(r.train_data->n, o.batch_size, r.loader->batches_per_epoch()).c_str(), o.lr, trained);
  dist::Communicator& comm = dist::world();
  if (comm.distributed())
    std::fprintf(stderr, "finetune %s: data parallel over %d ranks, %lld images each per step%s\n", r.mode.c_str(),
                 comm.size(), static_cast<long long>(r.rank_loader.batch_size),
                 !o.aff() ? "" : r.bn_sync ? ", batch norm synchronised" : ", batch norm per rank");
}

// After every --eval-every epoch and the last: SA and RA on the test set, a
// metrics line and results.json; the history goes into the checkpoint.
std::function<std::map<std::string, std::string>(int64_t)> evaluate_at_epoch_end(FinetuneRun& r,
                                                                                const FinetuneOptions& o) {
  return [&r, &o](int64_t epoch) -> std::map<std::string, std::string> {
    r.report.epochs_done = epoch;
    if (epoch % o.eval_every != 0 && epoch != o.epochs) return {};
    r.model->eval();
    method::LogitsFn logits = [&r](const Tensor& x) { return r.model->logits(x); };
    auto t0 = std::chrono::steady_clock::now();
    // Each rank attacks its shard of the test set; the summed counts are
    // one process's (advcl/attacks/evaluate.h).
    method::EvalCounts c =
        method::sum_over_ranks(method::evaluate_pgd(logits, *r.test_loader, r.eval), dist::world());
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    method::EpochEval e{epoch, c.n, c.sa(), c.ra(), secs};
    r.history.add(e);
    if (!r.root) return {{kHistoryKey, r.history.encode()}};
    std::fprintf(stderr, "[%s] epoch %lld: SA %.2f%%  RA %.2f%%  (%lld test images, %.1fs)\n", r.stage.c_str(),
                 static_cast<long long>(epoch), 100 * e.sa, 100 * e.ra, static_cast<long long>(e.n), e.seconds);
    r.dir->log_metrics({{"stage", r.stage},
                        {"epoch", epoch},
                        {"test_sa", json_number(e.sa)},
                        {"test_ra", json_number(e.ra)},
                        {"test_images", e.n},
                        {"eval_seconds", json_number(e.seconds)}});
    r.dir->write_text("results.json", method::results_json(r.history, r.report));
    return {{kHistoryKey, r.history.encode()}};
  };
}

// Trains to the end: one finetune_step per batch, the gradients of what
// trains averaged over the ranks.
void train(FinetuneRun& r, const FinetuneOptions& o) {
  method::StepContext ctx(r.sgd->params(), dist::world());
  auto step = [&](const data::Batch& b, int64_t global_step) {
    // Attack starts keyed by step and by the image's position in the global
    // batch, so N ranks draw the noise one process draws.
    RngKey key{o.common.seed, static_cast<uint32_t>(RngPurpose::AttackStart), static_cast<uint32_t>(global_step),
               static_cast<uint32_t>(global_batch_offset(*r.loader, b))};
    const Device device = r.setup.device;
    return method::finetune_step(*r.model, *r.sgd, data::upload(b.images(), device), data::upload(b.labels, device),
                                 o.step, key, ctx);
  };
  auto lr = [&](int64_t e, int64_t, int64_t) { return nn::step_decay_lr(o.lr, e - 1, o.milestones, o.gamma); };
  run_training(*r.dir, *r.model, *r.sgd, *r.loader, r.loop, lr, step, r.from);
}

}  // namespace

int cmd_finetune(int argc, char** argv) {
  CLI::App app{"Finetune a pretrained encoder: SLF (linear, clean), ALF (linear, PGD-10), AFF (full, TRADES)",
               "advcl finetune"};
  FinetuneOptions o;
  add_finetune_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  resolve_options(app, o);
  FinetuneRun r;
  open_run_folder(r, app, o);
  load_splits(r, o);
  build_model(r, o);
  make_loaders(r, o);
  describe_run(r, app, o);
  prepare_loop(r, o);
  print_summary(r, o);
  r.loop.on_epoch_end = evaluate_at_epoch_end(r, o);
  train(r, o);

  if (!r.root) return 0;
  r.dir->write_text("results.json", method::results_json(r.history, r.report));
  std::printf("%s", method::results_table(r.history, r.report).c_str());
  std::printf("results: %s\nfinetuned model: %s\n", r.dir->file("results.json").c_str(),
              r.dir->last_checkpoint().c_str());
  return 0;
}

}  // namespace advcl::cli
