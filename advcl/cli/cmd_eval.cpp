// `advcl eval`: SA and RA of a finetuned checkpoint (encoder + classifier)
// on a test split, under PGD (the finetuning protocol's attack) or AutoAttack.
// Under mpirun each rank attacks its shard of the test set and the counts are
// summed (the same figures as one process); rank 0 prints and writes --json.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "advcl/attacks/autoattack.h"
#include "advcl/cli/commands.h"
#include "advcl/cli/option_checks.h"
#include "advcl/cli/common_options.h"
#include "advcl/step/data_parallel.h"
#include "advcl/attacks/evaluate.h"
#include "advcl/finetune/finetune_model.h"
#include "advcl/run/json_out.h"
#include "advcl/run/model_io.h"
#include "advcl/run/run_dir.h"
#include "engine/atomic_file.h"

namespace advcl::cli {

namespace {

// The command line; the attack's radius and step are in 1/255 units here and
// in [0, 1] units in `eval` once checked.
struct EvalCliOptions {
  DataOptions data;
  std::string ckpt, attack = "pgd", json_out;
  autoattack::AutoAttackOptions aa;  // --attacks; the rest is set from the options below
  double epsilon = 8, step_size = 2;
  int64_t batch_size = 256;
  int threads = 0, workers = 2;
  DeviceOptions compute;
  bool no_random_start = false;
  method::EvalOptions eval;
  bool standard_stages() const { return aa.attacks == autoattack::AutoAttackOptions{}.attacks; }
};

void add_eval_options(CLI::App& app, EvalCliOptions& o) {
  o.data.split = "test";
  add_data_options(app, o.data);
  app.add_option("--ckpt", o.ckpt, "finetuned checkpoint (`advcl finetune`'s last.safetensors)")->required();
  app.add_option("--attack", o.attack, "pgd, autoattack or none")->capture_default_str();
  app.add_option("--steps", o.eval.steps, "PGD iterations")->capture_default_str();
  app.add_option("--attacks", o.aa.attacks,
                 "AutoAttack's stages, in order (default: the standard version's apgd-ce,apgd-t,fab-t,square; "
                 "one name alone runs that attack alone)")
      ->delimiter(',')
      ->check(CLI::IsMember({"apgd-ce", "apgd-t", "fab-t", "square"}));
  app.add_option("--eps", o.epsilon, "L-inf radius, in 1/255 units")->capture_default_str();
  app.add_option("--step-size", o.step_size, "PGD step, in 1/255 units")->capture_default_str();
  app.add_flag("--no-random-start", o.no_random_start, "start PGD at the clean image instead of x + U(-eps, eps)");
  app.add_option("--batch-size", o.batch_size, "evaluation batch size (under mpirun: split over the ranks)")
      ->capture_default_str();
  app.add_option("--seed", o.eval.seed, "seed of the random starts")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: OpenMP default)");
  add_device_options(app, o.compute);
  app.add_option("--workers", o.workers, "data loader threads")->capture_default_str();
  app.add_option("--json", o.json_out, "also write the result to this JSON file");
}

// Every value's check, before any work; the attack in [0, 1] units; threads.
void resolve_options(const CLI::App& app, EvalCliOptions& o) {
  check_options(app);  // every shared option's value (advcl/cli/option_checks.h)
  if (o.attack != "pgd" && o.attack != "autoattack" && o.attack != "none")
    fail("--attack: '", o.attack, "' is not an attack; use pgd, autoattack or none");
  if (o.attack != "autoattack" && !o.standard_stages()) fail("--attacks: only with --attack autoattack");
  if (o.aa.attacks.empty()) fail("--attacks: name at least one stage");
  if (o.eval.steps < 0) fail("--steps must be >= 0, got ", o.eval.steps);
  if (!(o.epsilon >= 0) || !(o.step_size >= 0)) fail("--eps and --step-size must be >= 0");
  if (o.batch_size < 1) fail("--batch-size must be positive, got ", o.batch_size);
  o.eval.epsilon = o.epsilon / 255;
  o.eval.step = o.step_size / 255;
  o.eval.random_start = !o.no_random_start;
  if (o.attack == "none") o.eval.steps = 0;
  // An unwritable --json is found now, not after the (long) evaluation.
  if (!o.json_out.empty() && dist::world().is_root()) check_writable(o.json_out, "--json");
  CommonOptions threads_only;
  threads_only.threads = o.threads;
  apply_threads(threads_only);
}

// The finetuned model on its device and the data it is evaluated on, checked
// against each other.
struct EvalSubject {
  std::unique_ptr<method::FinetuneModel> model;
  ComputeSetup setup;  // the device, and bf16's autocast while the evaluation runs
  std::shared_ptr<const data::ImageDataset> data;
};

EvalSubject load_subject(EvalCliOptions& o) {
  EvalSubject s;
  s.model = method::load_finetuned(o.ckpt);
  s.setup = resolve_compute(o.compute);
  o.eval.device = s.setup.device;
  s.model->to(o.eval.device);
  s.data = load_data(o.data, o.data.split);
  if (s.data->num_classes != s.model->num_classes())
    fail("--data: ", s.data->num_classes, " classes, the classifier of ", o.ckpt, " has ", s.model->num_classes());
  if (s.data->channels != s.model->encoder().options().in_channels)
    fail("--data: ", s.data->channels, "-channel images, the encoder of ", o.ckpt, " takes ",
         s.model->encoder().options().in_channels, " (see --channels)");
  return s;
}

// AutoAttack over the loader; each batch passes its first data-set index, so
// a point's random streams depend neither on --batch-size nor on the number
// of ranks.
method::EvalCounts autoattack_counts(const method::LogitsFn& logits, data::BatchLoader& loader, int64_t batch_size,
                                     EvalCliOptions& o) {
  dist::Communicator& comm = dist::world();
  o.aa.epsilon = o.eval.epsilon;
  o.aa.seed = o.eval.seed;
  o.aa.batch_size = batch_size;
  auto progress = [&](const method::EvalCounts& so_far) {
    if (comm.is_root())
      std::fprintf(stderr, "autoattack: %lld images so far%s, SA %.2f%%  RA %.2f%%\n",
                   static_cast<long long>(so_far.n), comm.distributed() ? " on rank 0" : "", 100 * so_far.sa(),
                   100 * so_far.ra());
  };
  method::AutoAttackCounts ac = method::evaluate_autoattack(logits, loader, o.aa, o.eval.device, progress, comm);
  if (comm.is_root())
    for (auto& [name, k] : ac.broken)
      std::fprintf(stderr, "autoattack: %-8s broke %lld points\n", name.c_str(), static_cast<long long>(k));
  return ac.counts;
}

// "PGD-20, eps 8/255, step 2/255, random start", "AutoAttack (standard), eps 8/255" or "no attack".
std::string attack_description(const EvalCliOptions& o) {
  if (o.attack == "none") return "no attack";
  if (o.attack == "autoattack") {
    std::string stages;
    for (const std::string& a : o.aa.attacks) stages += (stages.empty() ? "" : ", ") + a;
    return "AutoAttack (" + (o.standard_stages() ? std::string("standard") : stages) + "), eps " +
           number_text(o.epsilon) + "/255";
  }
  return "PGD-" + std::to_string(o.eval.steps) + ", eps " + number_text(o.epsilon) + "/255, step " +
         number_text(o.step_size) + "/255" + (o.eval.random_start ? ", random start" : "");
}

void write_result_json(const EvalCliOptions& o, const EvalSubject& s, const method::EvalCounts& c,
                       const std::string& what, double secs) {
  const OrderedJson result{{"checkpoint", o.ckpt},          {"data", s.data->name},
                           {"images", c.n},                 {"attack", what},
                           {"sa", json_number(100 * c.sa())}, {"ra", json_number(100 * c.ra())},
                           {"units", "percent"},            {"precision", s.setup.precision},
                           {"seconds", json_number(secs)}};
  try {
    write_file_atomically(o.json_out, json_line(result) + "\n");
  } catch (const Error& e) {
    fail("--json: ", e.what());
  }
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  CLI::App app{"Clean (SA) and robust (RA) accuracy of a finetuned checkpoint", "advcl eval"};
  EvalCliOptions o;
  add_eval_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  resolve_options(app, o);
  EvalSubject s = load_subject(o);
  dist::Communicator& comm = dist::world();
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.seed = o.eval.seed;
  lo.workers = o.workers;
  lo = shard_eval_loader(lo, comm);
  data::BatchLoader loader(s.data, std::make_shared<data::ToFloat>(), lo);
  s.model->eval();
  method::LogitsFn logits = [&](const Tensor& x) { return s.model->logits(x); };
  if (comm.distributed() && comm.is_root())
    std::fprintf(stderr, "eval: data parallel over %d ranks, %lld images each per batch\n", comm.size(),
                 static_cast<long long>(lo.batch_size));

  auto t0 = std::chrono::steady_clock::now();
  method::EvalCounts c = o.attack == "autoattack"
                             ? autoattack_counts(logits, loader, lo.batch_size, o)
                             : method::sum_over_ranks(method::evaluate_pgd(logits, loader, o.eval), comm);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string what = attack_description(o);
  if (!comm.is_root()) return 0;
  std::printf("%s on %lld images of %s: SA %.2f%%  RA %.2f%%  (%s, %.1fs)\n", o.ckpt.c_str(),
              static_cast<long long>(c.n), s.data->name.c_str(), 100 * c.sa(), 100 * c.ra(), what.c_str(), secs);
  if (!o.json_out.empty()) write_result_json(o, s, c, what, secs);
  return 0;
}

}  // namespace advcl::cli
