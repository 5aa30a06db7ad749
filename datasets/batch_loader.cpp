#include "datasets/batch_loader.h"

#include <sstream>

#include "cuda/pinned_upload.h"
#include "engine/common.h"

namespace advcl::data {

Tensor upload(const Tensor& host, Device device) {
  if (!host.device().is_cpu()) fail("upload: the tensor is on ", host.device().str(), ", not the host");
  if (device.is_cpu()) return host;
  Tensor out = Tensor::empty(host.shape(), host.dtype(), device);
  cuda::upload_async(out.raw_data(), host.raw_data(), host.nbytes());
  return out;
}

BatchLoader::BatchLoader(std::shared_ptr<const ImageDataset> dataset, std::shared_ptr<const SampleTransform> transform,
                         LoaderOptions options, LoaderState start)
    : ds_(std::move(dataset)), tf_(std::move(transform)), opt_(options) {
  if (!ds_) fail("BatchLoader: no dataset");
  if (!tf_) fail("BatchLoader: no transform");
  ds_->check();
  if (ds_->n == 0) fail("BatchLoader: dataset ", ds_->name, " is empty");
  if (opt_.workers < 0) fail("BatchLoader: --workers must be >= 0, got ", opt_.workers);
  if (opt_.prefetch < 1) fail("BatchLoader: --prefetch must be >= 1, got ", opt_.prefetch);
  shard_ = {opt_.batch_size, opt_.rank, opt_.world, opt_.drop_last};
  check_shard_options(shard_);
  nb_ = data::batches_per_epoch(ds_->n, shard_);
  if (nb_ == 0)
    fail("BatchLoader: ", ds_->name, " has ", ds_->n, " images, fewer than one global batch of ",
         opt_.batch_size * opt_.world, " with drop_last");
  if (tf_->num_views() < 1) fail("BatchLoader: the transform produces no views");
  for (int64_t v = 0; v < tf_->num_views(); ++v)
    view_shapes_.push_back(tf_->view_shape(v, ds_->channels, ds_->height, ds_->width));
  set_state(start);
  for (int t = 0; t < opt_.workers; ++t) threads_.emplace_back([this] { worker_loop(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::string BatchLoader::describe() const {
  std::ostringstream os;
  os << "loader: " << ds_->n << " images, batch " << opt_.batch_size;
  if (opt_.world > 1) os << " per rank (rank " << opt_.rank << " of " << opt_.world << ")";
  os << ", " << nb_ << " batches/epoch" << (opt_.drop_last ? " (drop last)" : "") << ", "
     << (opt_.shuffle ? "shuffled" : "in order") << ", seed " << opt_.seed << ", " << opt_.workers
     << " workers, prefetch " << opt_.prefetch;
  return os.str();
}

Batch BatchLoader::build(const std::vector<int64_t>& order, int64_t epoch, int64_t b) const {
  int64_t begin = 0, end = 0;
  batch_range(ds_->n, shard_, b, begin, end);
  const int64_t bs = end - begin;
  Batch out;
  out.epoch = epoch;
  out.index = b;
  std::vector<float*> dst(view_shapes_.size());
  std::vector<int64_t> vsize(view_shapes_.size());
  for (size_t v = 0; v < view_shapes_.size(); ++v) {
    const Shape& s = view_shapes_[v];
    out.views.push_back(Tensor::empty({bs, s[0], s[1], s[2]}, DType::Float32));
    vsize[v] = s[0] * s[1] * s[2];
  }
  out.labels = Tensor::empty({bs}, DType::Int64);
  out.indices = Tensor::empty({bs}, DType::Int64);
  int64_t* lab = out.labels.data<int64_t>();
  int64_t* idx = out.indices.data<int64_t>();
  for (int64_t i = 0; i < bs; ++i) {
    const int64_t k = order[static_cast<size_t>(begin + i)];
    idx[i] = k;
    lab[i] = ds_->labels[static_cast<size_t>(k)];
    // Checked here, where labels enter training: the losses take them as
    // given, since checking them there would read them back from the GPU.
    if (lab[i] < -1 || lab[i] >= ds_->num_classes)
      fail("BatchLoader: ", ds_->name, " image ", k, " has label ", lab[i], ", not -1 or a class in [0, ",
           ds_->num_classes, ")");
    for (size_t v = 0; v < dst.size(); ++v) dst[v] = out.views[v].data<float>() + i * vsize[v];
    SampleRng rng(RngKey{opt_.seed, static_cast<uint32_t>(RngPurpose::Augment), static_cast<uint32_t>(epoch),
                         static_cast<uint32_t>(k)});
    tf_->apply(ImageU8{ds_->image(k), ds_->channels, ds_->height, ds_->width}, rng, dst.data());
  }
  return out;
}

void BatchLoader::reset_locked(LoaderState s, std::shared_ptr<const std::vector<int64_t>> order) {
  ++generation_;
  ready_.clear();
  epoch_ = s.epoch;
  deliver_ = issue_ = s.batch;
  order_ = std::move(order);
}

void BatchLoader::set_state(LoaderState s) {
  if (s.epoch < 0 || s.batch < 0 || s.batch > nb_)
    fail("BatchLoader: cannot resume at epoch ", s.epoch, " batch ", s.batch, " (", nb_, " batches per epoch)");
  if (s.batch == nb_) s = {s.epoch + 1, 0};  // a state saved right at an epoch's end
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_order(ds_->n, opt_.seed, s.epoch, opt_.shuffle));
  {
    std::lock_guard<std::mutex> lk(m_);
    reset_locked(s, std::move(order));
  }
  work_cv_.notify_all();
}

LoaderState BatchLoader::state() const {
  std::lock_guard<std::mutex> lk(m_);
  return {epoch_, deliver_};
}

void BatchLoader::worker_loop() {
  std::unique_lock<std::mutex> lk(m_);
  for (;;) {
    work_cv_.wait(lk, [&] { return stop_ || (issue_ < nb_ && issue_ < deliver_ + opt_.prefetch); });
    if (stop_) return;
    const int64_t b = issue_++, epoch = epoch_;
    const uint64_t gen = generation_;
    auto order = order_;
    lk.unlock();
    Slot slot;
    try {
      slot.batch = build(*order, epoch, b);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lk.lock();
    if (gen == generation_) {
      ready_[b] = std::move(slot);
      ready_cv_.notify_all();
    }
  }
}

bool BatchLoader::next(Batch& out) {
  const LoaderState now = state();
  if (now.batch >= nb_) {
    // End of the epoch: move to the next one (workers start on it at once).
    set_state({now.epoch + 1, 0});
    return false;
  }
  Slot slot;
  if (threads_.empty()) {
    std::shared_ptr<const std::vector<int64_t>> order;
    int64_t b, epoch;
    {
      std::lock_guard<std::mutex> lk(m_);
      b = deliver_++;
      epoch = epoch_;
      order = order_;
    }
    out = build(*order, epoch, b);
    return true;
  }
  {
    std::unique_lock<std::mutex> lk(m_);
    const int64_t b = deliver_;
    ready_cv_.wait(lk, [&] { return ready_.count(b) != 0; });
    slot = std::move(ready_[b]);
    ready_.erase(b);
    ++deliver_;
  }
  work_cv_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  out = std::move(slot.batch);
  return true;
}

}  // namespace advcl::data
