// `advcl features`: the pooled features of every image of a dataset from the
// encoder of any advcl checkpoint (SimCLR, AdvCL, finetuned), saved as
// safetensors: float32 `features` [N, D] and int64 `labels` [N]. For
// clustering (`advcl pseudo-labels --features`), linear probes or plots
// outside advcl. Under mpirun each rank encodes its shard, the rows are
// gathered into data-set order (encode_all) and rank 0 writes the file.
#include <cstdio>

#include "advcl/cli/commands.h"
#include "advcl/cli/option_checks.h"
#include "advcl/cli/common_options.h"
#include "advcl/pretrain/encode.h"
#include "advcl/run/model_io.h"
#include "nn/parallel/communicator.h"
#include "engine/atomic_file.h"

namespace advcl::cli {

int cmd_features(int argc, char** argv) {
  CLI::App app{"Pooled encoder features of every image, saved as safetensors (features [N, D], labels [N])",
               "advcl features"};
  DataOptions data;
  std::string ckpt, out;
  int threads = 0, workers = 2, bn_set = -1;
  int64_t batch_size = 256;
  app.add_option("--ckpt", ckpt, "checkpoint whose encoder makes the features (any stage)")->required();
  app.add_option("--out", out, "where to write the features (safetensors)")->required();
  app.add_option("--bn-set", bn_set, "BN set of a multi-set checkpoint to encode with (default: pgd)");
  app.add_option("--batch-size", batch_size, "encoding batch size (under mpirun: split over the ranks)")
      ->capture_default_str();
  app.add_option("--threads", threads, "CPU threads");
  app.add_option("--workers", workers, "data loader threads")->capture_default_str();
  add_data_options(app, data);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  check_options(app);  // every shared option's value, before any work (advcl/cli/option_checks.h)
  if (batch_size < 1) fail("features: --batch-size must be >= 1");
  if (dist::world().is_root()) check_writable(out, "--out");  // before the encoding, not after it
  CommonOptions threads_only;
  threads_only.threads = threads;
  apply_threads(threads_only);

  auto ds = load_data(data, data.split);
  auto model = load_encoder(ckpt, bn_set);
  Tensor features = encode_all(*model, ds, batch_size, workers);
  if (!dist::world().is_root()) return 0;
  save_features(out, features, *ds,
                {{"checkpoint", ckpt}, {"bn_set", std::to_string(bn_set)}, {"dataset", ds->name},
                 {"split", data.split}, {"options", options_json(app)}});
  std::printf("features: %s of %s (%s) -> %s\n", shape_str(features.shape()).c_str(), ckpt.c_str(),
              ds->name.c_str(), out.c_str());
  return 0;
}

}  // namespace advcl::cli
