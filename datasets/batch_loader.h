// The batch loader: walks an in-memory ImageDataset epoch after epoch in the
// order of datasets/epoch_order.h (shuffled with the counter-based generator,
// sharded by rank), and builds each batch on background threads through a
// SampleTransform, a few batches ahead of the consumer so that decoding and
// augmentation overlap with compute.
//
// Determinism: a batch's samples depend only on (seed, epoch, batch, rank,
// world, batch size, drop_last) and each sample's augmentation only on
// (seed, epoch, dataset index), so the output is identical for any number of
// workers and any thread timing. Batches are delivered in order.
//
// Usage:
//   auto ds = std::make_shared<const ImageDataset>(load_dataset(spec));
//   auto aug = std::make_shared<CropFlip>(32, 4);          // RandomCrop(32, 4) + flip
//   LoaderOptions opt;  opt.batch_size = 128;  opt.seed = 1;  opt.workers = 4;
//   BatchLoader loader(ds, aug, opt);
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     Batch b;
//     while (loader.next(b)) train_step(b.images(), b.labels);  // false at epoch end
//   }
//   checkpoint.store(loader.state());  ...  loader.set_state(saved);  // resume
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "datasets/epoch_order.h"
#include "datasets/image_dataset.h"
#include "datasets/transforms.h"
#include "engine/tensor.h"

namespace advcl::data {

struct LoaderOptions {
  int64_t batch_size = 128;  // per rank
  bool shuffle = true;
  bool drop_last = false;  // drop the last, short batch of each epoch
  uint64_t seed = 0;
  int64_t rank = 0, world = 1;
  int workers = 2;   // background threads; 0 builds batches in next() itself
  // Batches built ahead of the consumer, being built or ready (at least 1).
  // Each worker builds one whole batch, so prefetch >= workers keeps all busy.
  int prefetch = 4;
};

// Where the loader is: the next batch next() returns is batch `batch` of
// epoch `epoch`. A checkpoint stores this; set_state() resumes from it.
struct LoaderState {
  int64_t epoch = 0;
  int64_t batch = 0;
  bool operator==(const LoaderState& o) const { return epoch == o.epoch && batch == o.batch; }
};

struct Batch {
  std::vector<Tensor> views;  // per transform view: float32 [B, C, H, W] on the CPU
  Tensor labels;              // int64 [B], each -1 (unlabelled) or a class of the dataset (checked per batch)
  Tensor indices;             // int64 [B]: dataset indices of the samples
  int64_t epoch = 0, index = 0;
  const Tensor& images() const { return views.at(0); }
  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
};

// A loader tensor (on the CPU) on `device`, for a training or evaluation
// step: the tensor itself for the CPU; for a GPU an asynchronous upload
// through pinned memory (cuda/pinned_upload.h) that the host does not wait
// for, so it is no host round trip (engine/counters.h), unlike
// Tensor::to(device).
Tensor upload(const Tensor& host, Device device);

class BatchLoader {
 public:
  BatchLoader(std::shared_ptr<const ImageDataset> dataset, std::shared_ptr<const SampleTransform> transform,
              LoaderOptions options, LoaderState start = {});
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch of the current epoch; false (and `out` untouched) at the
  // end of an epoch, after which the loader is at batch 0 of the next epoch.
  // An error raised while building the batch is rethrown here.
  bool next(Batch& out);

  int64_t batches_per_epoch() const { return nb_; }
  LoaderState state() const;
  // Continues from `s` (drops batches already prepared).
  void set_state(LoaderState s);

  const ImageDataset& dataset() const { return *ds_; }
  const LoaderOptions& options() const { return opt_; }
  // One line: sizes, sharding, workers; for the run log.
  std::string describe() const;

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  Batch build(const std::vector<int64_t>& order, int64_t epoch, int64_t b) const;
  void reset_locked(LoaderState s, std::shared_ptr<const std::vector<int64_t>> order);
  void worker_loop();

  std::shared_ptr<const ImageDataset> ds_;
  std::shared_ptr<const SampleTransform> tf_;
  LoaderOptions opt_;
  ShardOptions shard_;
  int64_t nb_ = 0;
  std::vector<Shape> view_shapes_;

  mutable std::mutex m_;
  std::condition_variable work_cv_, ready_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;  // bumped by set_state: late results of older generations are dropped
  int64_t epoch_ = 0, deliver_ = 0, issue_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  std::map<int64_t, Slot> ready_;
  std::vector<std::thread> threads_;
};

}  // namespace advcl::data
