// `advcl simclr`: standard (non-adversarial) SimCLR pretraining, the encoder
// whose features `advcl pseudo-labels` clusters. NT-Xent loss over the two
// views (SupCon's SimCLR case with base temperature = temperature).
#include "advcl/cli/commands.h"
#include "advcl/cli/contrastive_stage.h"
#include "advcl/cli/option_checks.h"
#include "advcl/pretrain/advcl_views.h"
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/pretrain/simclr_step.h"
#include "advcl/step/step_context.h"

namespace advcl::cli {

int cmd_simclr(int argc, char** argv) {
  CLI::App app{"SimCLR pretraining (the standard contrastive encoder used to make pseudo-labels)", "advcl simclr"};
  ContrastiveOptions o;
  o.epochs = 100;
  o.save_epoch = 0;
  add_contrastive_options(app, o);
  double temperature = 0.5;
  app.add_option("-t,--nce_t", temperature, "temperature of the NT-Xent loss")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  check_options(app);  // every shared option's value, before any work (advcl/cli/option_checks.h)
  ContrastiveRun r = start_run("simclr", app, o);
  method::ContrastiveModelOptions mo;  // head_proj alone: SimCLR trains no pseudo-label classifier
  mo.backbone.num_bn_sets = 1;
  mo.pseudo_classes.clear();
  views::SimclrOptions vo;
  vo.size = o.common.data.size;
  build_run(r, app, o, mo, views::make_simclr_views(vo));

  // Under mpirun the loss runs over the global batch (gathered features) and
  // the ranks' gradients are averaged (in buckets, during backward) before the step.
  method::StepContext ctx(r.model->named_parameters(), dist::world());
  method::SimclrStepOptions so;
  so.temperature = temperature;
  finish_run(r, o, [&](const data::Batch& b, int64_t) {
    Tensor loss = method::simclr_step(*r.model, *r.sgd, data::upload(b.views[0], r.device),
                                      data::upload(b.views[1], r.device), so, ctx);
    return method::StepValues{{"loss", loss}};
  });
  return 0;
}

}  // namespace advcl::cli
