// `advcl pretrain`: AdvCL pretraining (docs/method.md sections 9-11). Option
// names follow the reference's where it has them (--epoch, --batch-size,
// --learning_rate, --weight_decay, --nce_t, --ce_weight, --epsilon, --iter,
// --radius).
#include <cstdio>

#include "advcl/advcl_step.h"
#include "advcl/advcl_views.h"
#include "advcl/commands.h"
#include "advcl/option_checks.h"
#include "advcl/contrastive_stage.h"
#include "advcl/data_parallel.h"
#include "advcl/pseudo_labels.h"
#include "dist/all_gather.h"
#include "dist/gradient_reducer.h"
#include "dist/gradient_sync.h"
#include "engine/ops.h"

namespace advcl::cli {

int cmd_pretrain(int argc, char** argv) {
  CLI::App app{"AdvCL pretraining: adversarial contrastive learning with high-frequency views and pseudo-labels",
               "advcl pretrain"};
  ContrastiveOptions o;
  add_contrastive_options(app, o);
  std::string labels_path;
  int64_t bn_group = 0;
  double epsilon = 8, step_size = 2;
  method::AdvclStepOptions step_opt;
  app.add_option("--labels,--pseudo-labels", labels_path, "pseudo-labels: from `advcl pseudo-labels`, or the reference's "
                                          "imagenet_clPretrain_pseudo_labels.pkl")->required();
  app.add_option("-t,--nce_t", step_opt.temperature, "contrastive temperature")->capture_default_str();
  app.add_option("--ce_weight", step_opt.ce_weight, "weight of the pseudo-label cross-entropy")->capture_default_str();
  app.add_option("--epsilon", epsilon, "attack radius, in 1/255 units")->capture_default_str();
  app.add_option("--step-size", step_size, "attack step, in 1/255 units")->capture_default_str();
  app.add_option("--iter", step_opt.iterations, "attack iterations")->capture_default_str();
  app.add_option("--radius", step_opt.radius, "high-pass radius of the HFC view")->capture_default_str();
  app.add_option("--bn-group-size", bn_group, "batch-norm statistics over groups of N images (0: the whole view)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  check_options(app);  // every shared option's value, before any work (advcl/option_checks.h)
  step_opt.epsilon = epsilon / 255;
  step_opt.step_size = step_size / 255;

  ContrastiveRun r = start_run("pretrain", app, o);
  method::PseudoLabels labels = method::load_pseudo_labels(labels_path);
  labels.check(r.data->n, labels_path);
  std::fprintf(stderr, "pseudo-labels: %s (%s)\n", labels.summary().c_str(), labels.source.c_str());
  nn::ResNetOptions mo;
  mo.pseudo_classes = labels.ks;
  mo.bn_group_size = bn_group;
  views::SimclrOptions vo;
  vo.size = o.common.data.size;
  build_run(r, app, o, mo, views::make_advcl_views(vo));
  if (dist::world().is_root())
    std::fprintf(stderr, "pretrain: attack eps %.0f/255, step %.0f/255, %d iterations\n", epsilon, step_size,
               step_opt.iterations);

  dist::Communicator& comm = dist::world();
  if (comm.distributed()) {
    // SupCon over the global batch, CE weighted by this rank's share, and the
    // ranks' gradients averaged before the SGD step (the reducer below): N
    // ranks compute what one process computes on the whole batch
    // (tests_mpi/advcl_step_test.cpp).
    step_opt.gather = [&comm](const Tensor& p) { return dist::all_gather_rows(p, comm); };
  }
  // Gradients averaged in buckets while backward runs (a plain backward for one process).
  dist::GradientReducer reducer(r.model->named_parameters(), comm);
  step_opt.backward = [&reducer](const Tensor& loss) { reducer.backward(loss); };
  finish_run(r, o, [&](const data::Batch& b, int64_t global_step) {
    if (comm.distributed()) step_opt.ce_scale = dist::local_loss_scale(b.size(), comm);
    // Uploads the host does not wait for (data::upload).
    method::AdvclBatch ab{data::upload(b.views[views::kViewX1], r.device), data::upload(b.views[views::kViewX2], r.device),
                          data::upload(b.views[views::kViewOrg], r.device), {}};
    for (size_t h = 0; h < labels.ks.size(); ++h)
      ab.pseudo.push_back(data::upload(labels.lookup(h, b.indices), r.device));
    // Attack starts keyed by step and by the image's position in the global
    // batch (where this rank's shard starts, also in a short last batch), so
    // N ranks draw the noise one process would.
    uint32_t first = static_cast<uint32_t>(global_batch_offset(*r.loader, b));
    RngKey key{o.common.seed, 0, static_cast<uint32_t>(global_step), first};
    auto starts = method::advcl_attack_starts(ab.x_org, step_opt, key);
    method::AdvclStepResult res = method::advcl_step(*r.model, *r.sgd, ab, starts, step_opt);
    if (comm.distributed()) {
      // The pseudo-label CE is a mean over this rank's images: log the whole
      // batch's (count-weighted over the ranks), and the loss made from it.
      // SupCon already ran over the gathered global batch. (The transport
      // stages the two values through the host.)
      NoGradGuard no_grad;
      Tensor ce = ops::cat({ops::mul(res.ce.to(DType::Float64).view({1}), static_cast<double>(b.size())),
                            Tensor::full({1}, static_cast<double>(b.size()), DType::Float64, r.device)});
      comm.all_reduce(ce, dist::ReduceOp::Sum, "pretrain logged CE");
      res.ce = ops::div(ops::slice(ce, 0, 1), ops::slice(ce, 1, 2)).view({});
      res.loss = ops::add(res.contrastive.to(DType::Float64), ops::mul(res.ce, step_opt.ce_weight));
    }
    return method::StepValues{{"loss", res.loss}, {"contrastive", res.contrastive}, {"ce", res.ce}};
  });
  return 0;
}

}  // namespace advcl::cli
