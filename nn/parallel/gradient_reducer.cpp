#include "nn/parallel/gradient_reducer.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <string>

#include "nn/parallel/nccl_all_reduce.h"
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

int layout_digit_bits(DType transport, int ranks) {
  if (ranks < 1) fail("gradient reducer: the number of ranks must be positive, got ", ranks);
  int significand = 0;  // integers up to 2^significand are exact
  switch (transport) {
    case DType::Float64: significand = 53; break;
    case DType::Float32: significand = 24; break;
    case DType::BFloat16: significand = 8; break;
    default: fail("gradient reducer: a transport in ", dtype_name(transport), " cannot sum gradients");
  }
  const double limit = std::ldexp(1.0, significand);
  int bits = 0;
  // 16 bits at most: more would only shorten the check, and keep d*d well inside int64.
  while (bits < 16) {
    double digit_max = std::ldexp(1.0, bits + 1) - 1;
    if (ranks * digit_max * digit_max > limit) break;
    ++bits;
  }
  if (bits == 0)
    fail("gradient reducer: a ", dtype_name(transport), " transport cannot sum the bucket layout check exactly over ",
         ranks, " ranks");
  return bits;
}

std::vector<double> layout_check_values(const std::vector<int64_t>& numels, int bits) {
  if (bits < 1 || bits > 16) fail("gradient reducer: layout check digits of ", bits, " bits (1 to 16 allowed)");
  uint64_t count = 0;
  uint64_t fingerprint = 14695981039346656037ull;  // FNV-1a over the sizes, in order
  for (int64_t n : numels) {
    count += static_cast<uint64_t>(n);
    for (int byte = 0; byte < 8; ++byte) {
      fingerprint ^= (static_cast<uint64_t>(n) >> (8 * byte)) & 0xff;
      fingerprint *= 1099511628211ull;
    }
  }
  std::vector<double> out;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  for (uint64_t word : {count, fingerprint}) {
    for (int shift = 0; shift < 64; shift += bits) {
      uint64_t d = (word >> shift) & mask;
      out.push_back(static_cast<double>(d));
      out.push_back(static_cast<double>(d * d));
    }
  }
  return out;
}

bool layout_check_agrees(const std::vector<double>& sums, const std::vector<double>& mine, int ranks) {
  if (sums.size() != mine.size()) return false;
  for (size_t i = 0; i < sums.size(); ++i)
    if (sums[i] != ranks * mine[i]) return false;
  return true;
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
  const int bits = layout_digit_bits(transport_->dtype(), comm_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    std::vector<int64_t> sizes;
    for (size_t i : buckets_[b]) {
      bucket_of_[i] = b;
      sizes.push_back(numels[i]);
    }
    layout_.push_back(layout_check_values(sizes, bits));
  }
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
  for (size_t i : buckets_[b]) {
    const Tensor& p = params_[i].tensor;
    Tensor g = p.grad();
    if (g.defined() && g.shape() != p.shape())
      fail("gradient reducer: the gradient of '", params_[i].name, "' has shape ", shape_str(g.shape()),
           ", the parameter ", shape_str(p.shape()));
    pieces.push_back(g.defined() ? ops::reshape(g, {p.numel()}).to(dt).to(dev) : Tensor::zeros({p.numel()}, dt, dev));
    tail.push_back(g.defined() ? 1.0 : 0.0);
  }
  tail.insert(tail.end(), layout_[b].begin(), layout_[b].end());
  pieces.push_back(Tensor::from_vector<double>(tail, {static_cast<int64_t>(tail.size())}).to(dt).to(dev));
  transport_->start(static_cast<int>(b), ops::cat(pieces));
}

void GradientReducer::finish_all() {
  NoGradGuard no_grad;
  // Buckets holding a parameter that got no gradient on this rank start now.
  for (size_t& w : waiting_) w = 0;
  start_ready_buckets();
  const int ranks = comm_.size();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Tensor sums = transport_->finish(static_cast<int>(b));
    const std::vector<size_t>& members = buckets_[b];
    int64_t values = 0;
    for (size_t i : members) values += params_[i].tensor.numel();
    const size_t m = members.size();
    const std::vector<double>& layout = layout_[b];
    std::vector<double> tail =
        ops::slice(sums, values, values + static_cast<int64_t>(m + layout.size())).to(DType::Float64).to_vector<double>();
    std::vector<double> check(tail.begin() + static_cast<std::ptrdiff_t>(m), tail.end());
    if (!layout_check_agrees(check, layout, ranks))
      fail("gradient reducer: the ranks pack different parameter lists (bucket ", b, " holds ", values, " values in ",
           m, " parameters on this rank)");
    Tensor mean = ops::div(sums, static_cast<double>(ranks));
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
