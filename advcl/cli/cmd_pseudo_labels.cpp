// `advcl pseudo-labels`: the pseudo-labels AdvCL trains against. Either
// cluster the 512-d pooled features of an encoder (any advcl checkpoint:
// usually `advcl simclr`'s, or features saved by `advcl features`) with
// k-means at several granularities, or import
// the reference's precomputed file. The labels are ours when made here: they
// come from whatever encoder is given, not from the reference's
// ImageNet-pretrained SimCLR.
//
// Under mpirun the encoding (--encoder) is data-parallel: each rank encodes
// its shard and every rank gets all features in data-set order (encode_all).
// k-means then runs on rank 0 alone, which writes --out; the other ranks
// end there. --features and --import are rank 0's work only.
#include <cstdio>
#include <sstream>

#include "advcl/cli/commands.h"
#include "advcl/cli/option_checks.h"
#include "advcl/cli/common_options.h"
#include "advcl/pretrain/encode.h"
#include "advcl/pretrain/kmeans.h"
#include "advcl/run/model_io.h"
#include "engine/parse_number.h"
#include "advcl/pretrain/pseudo_labels.h"
#include "nn/parallel/communicator.h"
#include "engine/atomic_file.h"

namespace advcl::cli {

int cmd_pseudo_labels(int argc, char** argv) {
  CLI::App app{"Pseudo-labels: k-means of an encoder's features, or import of the reference's label file",
               "advcl pseudo-labels"};
  DataOptions data;
  std::string encoder, features_path, import_path, out, ks_text = "2,10,50,100,500";
  int restarts = 3, iterations = 100, threads = 0, workers = 2, bn_set = -1;
  int64_t batch_size = 256;
  uint64_t seed = 0;
  app.add_option("--encoder", encoder, "checkpoint whose encoder makes the features");
  app.add_option("--features", features_path, "features saved by `advcl features` (instead of --encoder)");
  app.add_option("--import", import_path, "the reference's imagenet_clPretrain_pseudo_labels.pkl (or our file)");
  app.add_option("--out", out, "where to write the labels (safetensors)")->required();
  app.add_option("--k", ks_text, "cluster counts, comma-separated")->capture_default_str();
  app.add_option("--restarts", restarts, "k-means restarts (the lowest inertia is kept)")->capture_default_str();
  app.add_option("--iterations", iterations, "k-means iterations at most")->capture_default_str();
  app.add_option("--bn-set", bn_set, "BN set of a multi-set checkpoint to encode with (default: pgd)");
  app.add_option("--batch-size", batch_size, "encoding batch size (under mpirun: split over the ranks)")
      ->capture_default_str();
  app.add_option("--seed", seed, "k-means seed")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads");
  app.add_option("--workers", workers, "data loader threads")->capture_default_str();
  add_data_options(app, data, false);
  app.get_option("--data")->required(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  check_options(app);  // every shared option's value, before any work (advcl/cli/option_checks.h)
  if (encoder.empty() + features_path.empty() + import_path.empty() != 2)
    fail("pseudo-labels: give exactly one of --encoder, --features and --import");
  // --k and --out are checked before any encoding or clustering is done.
  std::vector<int64_t> ks;
  {
    std::stringstream list(ks_text);
    for (std::string k; std::getline(list, k, ',');) {
      int64_t v = 0;
      if (!parse_int64(k, &v) || v < 1)
        fail("--k: '", k, "' in '", ks_text, "' is not a cluster count (a positive integer)");
      ks.push_back(v);
    }
    if (ks.empty()) fail("--k: no cluster counts in '", ks_text, "'");
  }
  CommonOptions threads_only;
  threads_only.threads = threads;
  apply_threads(threads_only);
  const bool root = dist::world().is_root();
  if (root) check_writable(out, "--out");
  // Only --encoder has work for several ranks.
  if (!root && encoder.empty()) return 0;

  method::PseudoLabels labels;
  if (!import_path.empty()) {
    labels = method::load_pseudo_labels(import_path);
    if (!data.data.empty()) labels.check(load_data(data, "train")->n, import_path);
  } else {
    Tensor features;
    std::string source;
    int64_t n = 0;
    if (!encoder.empty()) {
      if (data.data.empty()) fail("pseudo-labels: --encoder needs --data (the training images to label)");
      auto ds = load_data(data, "train");
      auto model = load_encoder(encoder, bn_set);
      features = encode_all(*model, ds, batch_size, workers);
      source = encoder;
      n = ds->n;
      if (!root) return 0;  // k-means on rank 0 alone (deterministic: nothing gained by repeating it)
    } else {
      features = load_features(features_path);
      source = features_path;
      n = features.size(0);
      // The labels index the training images: catch features of another split or dataset.
      if (!data.data.empty() && load_data(data, "train")->n != n)
        fail("pseudo-labels: ", features_path, " holds ", n, " feature rows but --data has a different count");
    }
    std::fprintf(stderr, "features: %s from %s\n", shape_str(features.shape()).c_str(), source.c_str());
    labels.source = "k-means of " + source + " features";
    for (int64_t k : ks) {
      method::KMeansOptions ko;
      ko.k = k;
      ko.restarts = restarts;
      ko.max_iterations = iterations;
      ko.seed = seed;
      method::KMeansResult r = method::kmeans(features, ko);
      std::fprintf(stderr, "k-means k=%lld: inertia %.4g after %d iterations (restart %d of %d)\n",
                   static_cast<long long>(ko.k), r.inertia, r.iterations, r.restart + 1, restarts);
      labels.ks.push_back(ko.k);
      labels.train.push_back(r.labels);
    }
    labels.check(n, out);
  }
  method::save_pseudo_labels(out, labels);
  std::printf("pseudo-labels: %s -> %s\n", labels.summary().c_str(), out.c_str());
  return 0;
}

}  // namespace advcl::cli
