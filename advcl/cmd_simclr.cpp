// `advcl simclr`: standard (non-adversarial) SimCLR pretraining, the encoder
// whose features `advcl pseudo-labels` clusters. NT-Xent loss over the two
// views (SupCon's SimCLR case with base temperature = temperature).
#include "advcl/advcl_views.h"
#include "advcl/commands.h"
#include "advcl/contrastive_stage.h"
#include "advcl/losses.h"
#include "dist/all_gather.h"
#include "dist/gradient_reducer.h"
#include "dist/gradient_sync.h"
#include "engine/ops.h"

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
  ContrastiveRun r = start_run("simclr", app, o);
  nn::ResNetOptions mo;
  mo.num_bn_sets = 1;
  mo.pseudo_classes.clear();
  views::SimclrOptions vo;
  vo.size = o.common.data.size;
  build_run(r, app, o, mo, views::make_simclr_views(vo));

  dist::Communicator& comm = dist::world();
  dist::GradientReducer reducer(r.model->named_parameters(), comm);
  finish_run(r, o, [&](const data::Batch& b, int64_t) {
    r.model->train();
    r.sgd->zero_grad();
    int64_t B = b.size();
    Tensor f = r.model->features(ops::cat({b.views[0].to(r.device), b.views[1].to(r.device)}), nn::BnSets::repeat(0, 2));
    Tensor p = r.model->project(f, 2);
    // Under mpirun the loss runs over the global batch (gathered features) and
    // the ranks' gradients are averaged (in buckets, during backward) before the step.
    auto global = [&](const Tensor& t) { return comm.distributed() ? dist::all_gather_rows(t, comm) : t; };
    Tensor loss = method::supcon_loss({global(ops::slice(p, 0, B)), global(ops::slice(p, B, 2 * B))}, temperature,
                                      temperature);
    reducer.backward(loss);
    r.sgd->step();
    return std::map<std::string, double>{{"loss", loss.item()}};
  });
  return 0;
}

}  // namespace advcl::cli
