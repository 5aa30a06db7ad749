// `advcl pseudo-labels`: the pseudo-labels AdvCL trains against. Either
// cluster the 512-d pooled features of an encoder (any advcl checkpoint:
// usually `advcl simclr`'s) with k-means at several granularities, or import
// the reference's precomputed file. The labels are ours when made here: they
// come from whatever encoder is given, not from the reference's
// ImageNet-pretrained SimCLR.
#include <cstdio>
#include <sstream>

#include "advcl/commands.h"
#include "advcl/common_options.h"
#include "advcl/kmeans.h"
#include "advcl/model_io.h"
#include "advcl/pseudo_labels.h"
#include "datasets/batch_loader.h"
#include "engine/ops.h"

namespace advcl::cli {

namespace {

// Pooled features of every image, in dataset order, eval mode.
Tensor encode_all(nn::ResNet18& model, std::shared_ptr<const data::ImageDataset> ds, int64_t batch_size, int workers) {
  data::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = false;
  lo.workers = workers;
  data::BatchLoader loader(ds, std::make_shared<data::ToFloat>(), lo);
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  data::Batch b;
  int64_t done = 0;
  while (loader.next(b)) {
    parts.push_back(model.features(b.images(), 0));
    done += b.size();
    if (parts.size() % 20 == 0) std::fprintf(stderr, "features: %lld/%lld\n", static_cast<long long>(done), static_cast<long long>(ds->n));
  }
  return ops::cat(parts);
}

}  // namespace

int cmd_pseudo_labels(int argc, char** argv) {
  CLI::App app{"Pseudo-labels: k-means of an encoder's features, or import of the reference's label file",
               "advcl pseudo-labels"};
  DataOptions data;
  std::string encoder, import_path, out, ks_text = "2,10,50,100,500";
  int restarts = 3, iterations = 100, threads = 0, workers = 2, bn_set = -1;
  int64_t batch_size = 256;
  uint64_t seed = 0;
  app.add_option("--encoder", encoder, "checkpoint whose encoder makes the features");
  app.add_option("--import", import_path, "the reference's imagenet_clPretrain_pseudo_labels.pkl (or our file)");
  app.add_option("--out", out, "where to write the labels (safetensors)")->required();
  app.add_option("--k", ks_text, "cluster counts, comma-separated")->capture_default_str();
  app.add_option("--restarts", restarts, "k-means restarts (the lowest inertia is kept)")->capture_default_str();
  app.add_option("--iterations", iterations, "k-means iterations at most")->capture_default_str();
  app.add_option("--bn-set", bn_set, "BN set of a multi-set checkpoint to encode with (default: pgd)");
  app.add_option("--batch-size", batch_size, "encoding batch size")->capture_default_str();
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
  if (encoder.empty() == import_path.empty()) fail("pseudo-labels: give exactly one of --encoder and --import");
  CommonOptions threads_only;
  threads_only.threads = threads;
  apply_threads(threads_only);

  method::PseudoLabels labels;
  if (!import_path.empty()) {
    labels = method::load_pseudo_labels(import_path);
    if (!data.data.empty()) labels.check(load_data(data, "train")->n, import_path);
  } else {
    if (data.data.empty()) fail("pseudo-labels: --encoder needs --data (the training images to label)");
    auto ds = load_data(data, "train");
    auto model = load_encoder(encoder, bn_set);
    Tensor features = encode_all(*model, ds, batch_size, workers);
    std::fprintf(stderr, "features: %s from %s\n", shape_str(features.shape()).c_str(), encoder.c_str());
    std::stringstream ks(ks_text);
    labels.source = "k-means of " + encoder + " features";
    for (std::string k; std::getline(ks, k, ',');) {
      method::KMeansOptions ko;
      ko.k = std::stoll(k);
      ko.restarts = restarts;
      ko.max_iterations = iterations;
      ko.seed = seed;
      method::KMeansResult r = method::kmeans(features, ko);
      std::fprintf(stderr, "k-means k=%lld: inertia %.4g after %d iterations (restart %d of %d)\n",
                   static_cast<long long>(ko.k), r.inertia, r.iterations, r.restart + 1, restarts);
      labels.ks.push_back(ko.k);
      labels.train.push_back(r.labels);
    }
    labels.check(ds->n, out);
  }
  method::save_pseudo_labels(out, labels);
  std::printf("pseudo-labels: %s -> %s\n", labels.summary().c_str(), out.c_str());
  return 0;
}

}  // namespace advcl::cli
