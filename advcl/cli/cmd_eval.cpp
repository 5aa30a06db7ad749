// `advcl eval`: SA and RA of a finetuned checkpoint (encoder + classifier)
// on a test split, under PGD (the finetuning protocol's attack) or AutoAttack.
// Under mpirun each rank attacks its shard of the test set and the counts are
// summed (the same figures as one process); rank 0 prints and writes --json.
#include <chrono>
#include <cstdio>

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

int cmd_eval(int argc, char** argv) {
  CLI::App app{"Clean (SA) and robust (RA) accuracy of a finetuned checkpoint", "advcl eval"};
  DataOptions data;
  data.split = "test";
  add_data_options(app, data);
  std::string ckpt, attack = "pgd", json_out;
  autoattack::AutoAttackOptions ao;  // --attacks; the rest is set below
  double epsilon = 8, step_size = 2;
  int64_t batch_size = 256;
  int threads = 0, workers = 2;
  DeviceOptions compute;
  bool no_random_start = false;
  method::EvalOptions eval;
  app.add_option("--ckpt", ckpt, "finetuned checkpoint (`advcl finetune`'s last.safetensors)")->required();
  app.add_option("--attack", attack, "pgd, autoattack or none")->capture_default_str();
  app.add_option("--steps", eval.steps, "PGD iterations")->capture_default_str();
  app.add_option("--attacks", ao.attacks,
                 "AutoAttack's stages, in order (default: the standard version's apgd-ce,apgd-t,fab-t,square; "
                 "one name alone runs that attack alone)")
      ->delimiter(',')
      ->check(CLI::IsMember({"apgd-ce", "apgd-t", "fab-t", "square"}));
  app.add_option("--eps", epsilon, "L-inf radius, in 1/255 units")->capture_default_str();
  app.add_option("--step-size", step_size, "PGD step, in 1/255 units")->capture_default_str();
  app.add_flag("--no-random-start", no_random_start, "start PGD at the clean image instead of x + U(-eps, eps)");
  app.add_option("--batch-size", batch_size, "evaluation batch size (under mpirun: split over the ranks)")
      ->capture_default_str();
  app.add_option("--seed", eval.seed, "seed of the random starts")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0: OpenMP default)");
  add_device_options(app, compute);
  app.add_option("--workers", workers, "data loader threads")->capture_default_str();
  app.add_option("--json", json_out, "also write the result to this JSON file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  check_options(app);  // every shared option's value, before any work (advcl/cli/option_checks.h)
  if (attack != "pgd" && attack != "autoattack" && attack != "none")
    fail("--attack: '", attack, "' is not an attack; use pgd, autoattack or none");
  const bool standard_stages = ao.attacks == autoattack::AutoAttackOptions{}.attacks;
  if (attack != "autoattack" && !standard_stages) fail("--attacks: only with --attack autoattack");
  if (ao.attacks.empty()) fail("--attacks: name at least one stage");
  if (eval.steps < 0) fail("--steps must be >= 0, got ", eval.steps);
  if (!(epsilon >= 0) || !(step_size >= 0)) fail("--eps and --step-size must be >= 0");
  if (batch_size < 1) fail("--batch-size must be positive, got ", batch_size);
  eval.epsilon = epsilon / 255;
  eval.step = step_size / 255;
  eval.random_start = !no_random_start;
  if (attack == "none") eval.steps = 0;
  // An unwritable --json is found now, not after the (long) evaluation.
  if (!json_out.empty() && dist::world().is_root()) check_writable(json_out, "--json");
  CommonOptions threads_only;
  threads_only.threads = threads;
  apply_threads(threads_only);

  std::unique_ptr<method::FinetuneModel> model = method::load_finetuned(ckpt);
  const ComputeSetup setup = resolve_compute(compute);
  eval.device = setup.device;
  model->to(eval.device);
  auto ds = load_data(data, data.split);
  if (ds->num_classes != model->num_classes())
    fail("--data: ", ds->num_classes, " classes, the classifier of ", ckpt, " has ", model->num_classes());
  if (ds->channels != model->encoder().options().in_channels)
    fail("--data: ", ds->channels, "-channel images, the encoder of ", ckpt, " takes ",
         model->encoder().options().in_channels, " (see --channels)");
  dist::Communicator& comm = dist::world();
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.seed = eval.seed;
  lo.workers = workers;
  lo = shard_eval_loader(lo, comm);
  data::BatchLoader loader(ds, std::make_shared<data::ToFloat>(), lo);
  model->eval();
  method::LogitsFn logits = [&](const Tensor& x) { return model->logits(x); };
  if (comm.distributed() && comm.is_root())
    std::fprintf(stderr, "eval: data parallel over %d ranks, %lld images each per batch\n", comm.size(),
                 static_cast<long long>(lo.batch_size));

  auto t0 = std::chrono::steady_clock::now();
  method::EvalCounts c;
  if (attack == "autoattack") {
    ao.epsilon = eval.epsilon;
    ao.seed = eval.seed;
    ao.batch_size = lo.batch_size;
    // Each batch passes its first data-set index, so a point's random streams
    // depend neither on --batch-size nor on the number of ranks.
    auto progress = [&](const method::EvalCounts& so_far) {
      if (comm.is_root())
        std::fprintf(stderr, "autoattack: %lld images so far%s, SA %.2f%%  RA %.2f%%\n",
                     static_cast<long long>(so_far.n), comm.distributed() ? " on rank 0" : "", 100 * so_far.sa(),
                     100 * so_far.ra());
    };
    method::AutoAttackCounts ac = method::evaluate_autoattack(logits, loader, ao, eval.device, progress, comm);
    c = ac.counts;
    if (comm.is_root())
      for (auto& [name, k] : ac.broken)
        std::fprintf(stderr, "autoattack: %-8s broke %lld points\n", name.c_str(), static_cast<long long>(k));
  } else {
    c = method::sum_over_ranks(method::evaluate_pgd(logits, loader, eval), comm);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string stages;
  for (const std::string& a : ao.attacks) stages += (stages.empty() ? "" : ", ") + a;
  std::string what = attack == "none" ? "no attack"
                     : attack == "autoattack"
                         ? "AutoAttack (" + (standard_stages ? std::string("standard") : stages) + "), eps " +
                               number_text(epsilon) + "/255"
                         : "PGD-" + std::to_string(eval.steps) + ", eps " + number_text(epsilon) + "/255, step " +
                               number_text(step_size) + "/255" + (eval.random_start ? ", random start" : "");
  if (!comm.is_root()) return 0;
  std::printf("%s on %lld images of %s: SA %.2f%%  RA %.2f%%  (%s, %.1fs)\n", ckpt.c_str(),
              static_cast<long long>(c.n), ds->name.c_str(), 100 * c.sa(), 100 * c.ra(), what.c_str(), secs);
  if (!json_out.empty()) {
    const OrderedJson result{{"checkpoint", ckpt},          {"data", ds->name},
                             {"images", c.n},             {"attack", what},
                             {"sa", json_number(100 * c.sa())}, {"ra", json_number(100 * c.ra())},
                             {"units", "percent"},        {"precision", setup.precision},
                             {"seconds", json_number(secs)}};
    const std::string text = json_line(result) + "\n";
    try {
      write_file_atomically(json_out, text);
    } catch (const Error& e) {
      fail("--json: ", e.what());
    }
  }
  return 0;
}

}  // namespace advcl::cli
