#include "dist/gradient_reducer.h"

#include <map>
#include <string>

#include "dist/nccl_all_reduce.h"
#include "engine/autograd.h"
#include "engine/ops.h"

namespace advcl::dist {

namespace {

class MpiBucketAllReduce : public BucketAllReduce {
 public:
  explicit MpiBucketAllReduce(Communicator& comm) : comm_(comm) {}
  DType dtype() const override { return DType::Float64; }
  Device device() const override { return Device::cpu(); }
  const char* name() const override { return "MPI (host, float64)"; }
  void start(int bucket, Tensor flat) override {
    started_[bucket] = {comm_.start_sum(flat.to_vector<double>(), "gradient bucket"), flat.numel()};
  }
  Tensor finish(int bucket) override {
    auto it = started_.find(bucket);
    if (it == started_.end()) fail("gradient reducer: bucket ", bucket, " was never started");
    std::vector<double> sums = comm_.finish_sum(it->second.first);
    int64_t n = it->second.second;
    started_.erase(it);
    return Tensor::from_vector<double>(sums, {n});
  }
  void progress() override { comm_.progress(); }

 private:
  Communicator& comm_;
  std::map<int, std::pair<int64_t, int64_t>> started_;  // bucket -> (ticket, values)
};

}  // namespace

std::unique_ptr<BucketAllReduce> make_mpi_bucket_all_reduce(Communicator& comm) {
  return std::make_unique<MpiBucketAllReduce>(comm);
}

std::vector<std::vector<size_t>> plan_buckets(const std::vector<int64_t>& numels, int64_t cap) {
  if (cap < 1) fail("plan_buckets: the bucket capacity must be positive, got ", cap);
  std::vector<std::vector<size_t>> buckets;
  int64_t filled = 0;
  for (size_t k = numels.size(); k-- > 0;) {
    if (buckets.empty() || filled + numels[k] > cap) {
      if (buckets.empty() || !buckets.back().empty()) buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(k);
    filled += numels[k];
  }
  return buckets;
}

GradientReducer::GradientReducer(nn::StateDict params, Communicator& comm, std::unique_ptr<BucketAllReduce> transport,
                                 int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm), transport_(std::move(transport)) {
  if (!transport_ && comm_.size() == 1) plain_backward_ = true;
  if (!transport_) {
    bool cuda = !params_.empty() && params_[0].tensor.device().is_cuda();
    transport_ = cuda && nccl_available() && !plain_backward_ ? make_nccl_bucket_all_reduce(comm_, params_[0].tensor.device())
                                          : make_mpi_bucket_all_reduce(comm_);
  }
  std::vector<int64_t> numels;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].tensor;
    if (!is_floating(p.dtype())) fail("gradient reducer: parameter '", params_[i].name, "' is not floating point");
    numels.push_back(p.numel());
    if (!index_of_.emplace(p.get(), i).second)
      fail("gradient reducer: parameter '", params_[i].name, "' is listed twice");
  }
  int64_t elem = static_cast<int64_t>(dtype_size(transport_->dtype()));
  buckets_ = plan_buckets(numels, std::max<int64_t>(1, bucket_bytes / elem));
  bucket_of_.assign(params_.size(), 0);
  for (size_t b = 0; b < buckets_.size(); ++b)
    for (size_t i : buckets_[b]) bucket_of_[i] = b;
}

void GradientReducer::backward(const Tensor& loss) {
  if (plain_backward_) {
    advcl::backward(loss);
    return;
  }
  begin_pass();
  in_backward_ = true;
  advcl::backward(loss, [this](const Tensor& leaf) { on_ready(leaf); });
  in_backward_ = false;
  finish_all();
}

void GradientReducer::average_held_gradients() {
  begin_pass();
  finish_all();  // every bucket starts now
}

void GradientReducer::begin_pass() {
  waiting_.clear();
  for (const auto& b : buckets_) waiting_.push_back(b.size());
  next_bucket_ = 0;
  stats_ = {};
  stats_.buckets = static_cast<int>(buckets_.size());
}

void GradientReducer::on_ready(const Tensor& leaf) {
  auto it = index_of_.find(leaf.get());
  if (it == index_of_.end()) return;  // a leaf that is not one of ours (e.g. an input)
  size_t& waiting = waiting_[bucket_of_[it->second]];
  if (waiting > 0) --waiting;
  start_ready_buckets();
  transport_->progress();
}

void GradientReducer::start_ready_buckets() {
  while (next_bucket_ < buckets_.size() && waiting_[next_bucket_] == 0) {
    start_bucket(next_bucket_++);
    if (in_backward_) ++stats_.started_during_backward;
  }
}

void GradientReducer::start_bucket(size_t b) {
  NoGradGuard no_grad;
  DType dt = transport_->dtype();
  Device dev = transport_->device();
  std::vector<Tensor> pieces;
  std::vector<double> tail;  // presence flags, then the layout check
  int64_t values = 0;
  for (size_t i : buckets_[b]) {
    const Tensor& p = params_[i].tensor;
    Tensor g = p.grad();
    if (g.defined() && g.shape() != p.shape())
      fail("gradient reducer: the gradient of '", params_[i].name, "' has shape ", shape_str(g.shape()),
           ", the parameter ", shape_str(p.shape()));
    pieces.push_back(g.defined() ? ops::reshape(g, {p.numel()}).to(dt).to(dev) : Tensor::zeros({p.numel()}, dt, dev));
    tail.push_back(g.defined() ? 1.0 : 0.0);
    values += p.numel();
  }
  double n = static_cast<double>(values);
  tail.push_back(n);
  tail.push_back(n * n);
  pieces.push_back(Tensor::from_vector<double>(tail, {static_cast<int64_t>(tail.size())}).to(dt).to(dev));
  transport_->start(static_cast<int>(b), ops::cat(pieces));
}

void GradientReducer::finish_all() {
  NoGradGuard no_grad;
  // Buckets holding a parameter that got no gradient on this rank start now.
  for (size_t& w : waiting_) w = 0;
  start_ready_buckets();
  double ranks = comm_.size();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Tensor sums = transport_->finish(static_cast<int>(b));
    const std::vector<size_t>& members = buckets_[b];
    int64_t values = 0;
    for (size_t i : members) values += params_[i].tensor.numel();
    int64_t m = static_cast<int64_t>(members.size());
    std::vector<double> tail = ops::slice(sums, values, values + m + 2).to(DType::Float64).to_vector<double>();
    double n = static_cast<double>(values);
    // Float32 sums of the count stay exact far beyond any bucket size.
    if (tail[static_cast<size_t>(m)] != ranks * n || tail[static_cast<size_t>(m) + 1] != ranks * n * n)
      fail("gradient reducer: the ranks pack different parameter lists (bucket ", b, " holds ", values,
           " values on this rank)");
    Tensor mean = ops::div(sums, ranks);
    int64_t at = 0;
    for (size_t k = 0; k < members.size(); ++k) {
      const Tensor& p = params_[members[k]].tensor;
      int64_t len = p.numel();
      if (tail[k] > 0) {
        Tensor avg = ops::reshape(ops::slice(mean, at, at + len), p.shape());
        Tensor g = p.grad();
        if (g.defined())
          g.copy_(avg);  // keeps the gradient's own dtype and device
        else
          Tensor(p).set_grad(avg.to(p.dtype()).to(p.device()));
      }
      at += len;
    }
  }
}

}  // namespace advcl::dist
