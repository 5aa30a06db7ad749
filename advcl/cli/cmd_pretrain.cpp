// `advcl pretrain`: adversarial contrastive pretraining with the method of
// --method (AdvCL by default, docs/method.md sections 9-11; ACL; the registry
// is advcl/pretrain/method.h). The run around the method's step is the same
// for every method. Option names follow the reference's where it has them
// (--epoch, --batch-size, --learning_rate, --weight_decay, --nce_t,
// --ce_weight, --epsilon, --iter, --radius).
#include <cstdio>

#include "advcl/cli/commands.h"
#include "advcl/cli/contrastive_stage.h"
#include "advcl/cli/option_checks.h"
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/pretrain/method.h"
#include "advcl/pretrain/pseudo_labels.h"
#include "advcl/run/model_io.h"
#include "advcl/step/data_parallel.h"
#include "advcl/step/step_context.h"

namespace advcl::cli {

int cmd_pretrain(int argc, char** argv) {
  CLI::App app{"Adversarial contrastive pretraining: AdvCL (the default) or ACL", "advcl pretrain"};
  ContrastiveOptions o;
  add_contrastive_options(app, o);
  std::string method_name = "advcl", labels_path;
  int64_t bn_group = 0;
  double epsilon = 8, step_size = 2;
  bool no_hfc = false, no_pseudo_labels = false;
  method::PretrainSettings settings;
  app.add_option("--method", method_name, "pretraining method: " + join(method::method_names(), ",") +
                                              " (docs/methods.md)")->capture_default_str();
  app.add_option("--labels,--pseudo-labels", labels_path, "pseudo-labels (AdvCL): from `advcl pseudo-labels`, or the "
                                          "reference's imagenet_clPretrain_pseudo_labels.pkl");
  app.add_option("-t,--nce_t", settings.temperature, "contrastive temperature")->capture_default_str();
  app.add_option("--ce_weight", settings.ce_weight, "weight of the pseudo-label cross-entropy (AdvCL)")->capture_default_str();
  app.add_option("--epsilon", epsilon, "attack radius, in 1/255 units")->capture_default_str();
  app.add_option("--step-size", step_size, "attack step, in 1/255 units")->capture_default_str();
  app.add_option("--iter", settings.iterations, "attack iterations")->capture_default_str();
  app.add_option("--radius", settings.radius, "high-pass radius of the HFC view (AdvCL)")->capture_default_str();
  app.add_flag("--no-hfc", no_hfc, "AdvCL without the high-frequency view (the paper's ablation)");
  app.add_flag("--no-pseudo-labels", no_pseudo_labels,
               "AdvCL without pseudo-labels: no x_ce attack, no CE term, no --labels (the paper's ablation)");
  app.add_option("--bn-group-size", bn_group, "batch-norm statistics over groups of N images (0: the whole view)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  check_options(app);  // every shared option's value, before any work (advcl/cli/option_checks.h)
  const method::PretrainMethod& m = method::find_method(method_name);
  settings.epsilon = epsilon / 255;
  settings.step_size = step_size / 255;
  settings.high_frequency_view = !no_hfc;
  settings.use_pseudo_labels = !no_pseudo_labels;
  if (m.name != "advcl" && (no_hfc || no_pseudo_labels))
    fail("--no-hfc and --no-pseudo-labels are ablations of AdvCL; --method is ", m.name);
  const bool with_labels = m.pseudo_labels(settings);
  if (with_labels && labels_path.empty())
    fail("--labels: method ", m.name, " trains pseudo-label heads and needs a pseudo-label file "
         "(`advcl pseudo-labels`; or --no-pseudo-labels for the ablation)");
  if (!with_labels && !labels_path.empty())
    fail("--labels: method ", m.name, no_pseudo_labels ? " with --no-pseudo-labels" : "",
         " uses no pseudo-labels; leave --labels out");

  ContrastiveRun r = start_run("pretrain", app, o);
  // The method's model: one BN set per name it declares, and a pseudo-label
  // classifier per granularity of the label file when it trains them.
  method::PseudoLabels labels;
  method::ContrastiveModelOptions mo;
  if (with_labels) {
    labels = method::load_pseudo_labels(labels_path);
    labels.check(r.data->n, labels_path);
    std::fprintf(stderr, "pseudo-labels: %s (%s)\n", labels.summary().c_str(), labels.source.c_str());
    mo.pseudo_classes = labels.ks;
  } else {
    mo.pseudo_classes.clear();
  }
  mo.backbone.num_bn_sets = static_cast<int>(m.bn_sets.size());
  mo.backbone.bn_group_size = bn_group;
  views::SimclrOptions vo;
  vo.size = o.common.data.size;
  build_run(r, app, o, mo, m.views(vo));
  r.loop.metadata["pretrain.method"] = m.name;
  r.loop.metadata["model.bn_set_names"] = bn_set_names_entry(m.bn_sets);
  if (dist::world().is_root())
    std::fprintf(stderr, "pretrain: %s; BN sets %s; attack eps %.0f/255, step %.0f/255, %d iterations\n",
                 m.summary.c_str(), join(m.bn_sets, ",").c_str(), epsilon, step_size, settings.iterations);

  // Data parallelism for the whole run (advcl/step/step_context.h): N ranks
  // compute what one process computes on the whole batch
  // (tests/mpi/advcl_step_test.cpp).
  method::StepContext ctx(r.model->named_parameters(), dist::world());
  finish_run(r, o, [&](const data::Batch& b, int64_t global_step) {
    method::PretrainBatch pb;
    // Uploads the host does not wait for (data::upload).
    for (const Tensor& v : b.views) pb.views.push_back(data::upload(v, r.device));
    for (size_t h = 0; h < labels.ks.size(); ++h) pb.pseudo.push_back(data::upload(labels.lookup(h, b.indices), r.device));
    // Attack starts keyed by step and by the image's position in the global
    // batch (where this rank's shard starts, also in a short last batch), so
    // N ranks draw the noise one process would.
    uint32_t first = static_cast<uint32_t>(global_batch_offset(*r.loader, b));
    pb.noise = RngKey{o.common.seed, 0, static_cast<uint32_t>(global_step), first};
    return m.step(*r.model, *r.sgd, pb, settings, ctx);
  });
  return 0;
}

}  // namespace advcl::cli
