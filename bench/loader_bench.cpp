// Loader throughput: images/s the batch loader (datasets/batch_loader.h)
// delivers for a CIFAR-10-shaped training set with the standard CIFAR
// augmentation, RandomCrop(32, 4) + horizontal flip, batch 128. The data is
// 50,000 random 3x32x32 uint8 images synthesised in memory (the loader's
// cost does not depend on pixel values, and no download is needed), or a
// real dataset with --data. bench/loader_bench.py runs this next to
// PyTorch's DataLoader doing the same work.
//
//   advcl_loader_bench [--images 50000] [--batch 128] [--workers 2]
//                      [--epochs 3] [--threads 1] [--data DIR]
// Prints one JSON line: {"images_per_s": ..., "best_epoch_s": ..., ...}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "datasets/batch_loader.h"
#include "datasets/load_dataset.h"
#include "engine/parallel.h"

using namespace advcl;
using namespace advcl::data;

namespace {

ImageDataset synthetic_cifar(int64_t n) {
  ImageDataset ds;
  ds.name = "synthetic cifar10-shaped";
  ds.n = n;
  ds.channels = 3;
  ds.height = ds.width = 32;
  ds.num_classes = 10;
  for (int c = 0; c < 10; ++c) ds.class_names.push_back("class" + std::to_string(c));
  ds.images.resize(static_cast<size_t>(n * ds.image_bytes()));
  std::mt19937_64 gen(1);
  for (size_t i = 0; i < ds.images.size(); i += 8) {
    uint64_t r = gen();
    std::memcpy(ds.images.data() + i, &r, std::min<size_t>(8, ds.images.size() - i));
  }
  ds.labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ds.labels[i] = static_cast<int64_t>(gen() % 10);
  ds.check();
  return ds;
}

int64_t arg_int(int argc, char** argv, int& i) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "loader_bench: %s needs a value\n", argv[i]);
    std::exit(2);
  }
  return std::atoll(argv[++i]);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t images = 50000, batch = 128, workers = 2, epochs = 3, threads = 1;
  std::string data;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--images") images = arg_int(argc, argv, i);
    else if (a == "--batch") batch = arg_int(argc, argv, i);
    else if (a == "--workers") workers = arg_int(argc, argv, i);
    else if (a == "--epochs") epochs = arg_int(argc, argv, i);
    else if (a == "--threads") threads = arg_int(argc, argv, i);
    else if (a == "--data" && i + 1 < argc) data = argv[++i];
    else {
      std::fprintf(stderr, "loader_bench: unknown argument '%s' (see the comment at the top of bench/loader_bench.cpp)\n",
                   a.c_str());
      return 2;
    }
  }
  set_num_threads(static_cast<int>(threads));
  std::shared_ptr<const ImageDataset> ds;
  if (data.empty()) {
    ds = std::make_shared<const ImageDataset>(synthetic_cifar(images));
  } else {
    DatasetSpec spec;
    apply_dataset_option(spec, "data", data);
    apply_dataset_option(spec, "size", "32");
    apply_dataset_option(spec, "channels", "3");
    ds = std::make_shared<const ImageDataset>(load_dataset(spec));
  }
  LoaderOptions opt;
  opt.batch_size = batch;
  opt.workers = static_cast<int>(workers);
  opt.seed = 1;
  BatchLoader loader(ds, std::make_shared<CropFlip>(32, 4), opt);

  // Every epoch is timed from the first request to the last batch, so the
  // start-up of the workers counts as it does in training; the best is kept.
  double best = 1e30;
  double checksum = 0;
  for (int64_t e = 0; e < epochs; ++e) {
    auto t0 = std::chrono::steady_clock::now();
    Batch b;
    int64_t seen = 0;
    while (loader.next(b)) {
      seen += b.size();
      checksum += b.images().data<float>()[0];  // touch the output
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (seen != ds->n) {
      std::fprintf(stderr, "loader_bench: epoch delivered %lld of %lld images\n", static_cast<long long>(seen),
                   static_cast<long long>(ds->n));
      return 1;
    }
    best = std::min(best, s);
  }
  std::printf(
      "{\"images_per_s\": %.1f, \"best_epoch_s\": %.4f, \"images\": %lld, \"batch\": %lld, \"workers\": %lld, "
      "\"epochs\": %lld, \"threads\": %lld, \"checksum\": %.3f}\n",
      static_cast<double>(ds->n) / best, best, static_cast<long long>(ds->n), static_cast<long long>(batch),
      static_cast<long long>(workers), static_cast<long long>(epochs), static_cast<long long>(threads), checksum);
  return 0;
}
