// Gradient averaging overlapped with the backward pass, in buckets (what
// PyTorch's DistributedDataParallel does; average_gradients() in
// gradient_sync.h is the one-shot version after backward).
//
// The parameters are grouped into buckets of about `bucket_bytes`, in
// reverse registration order: backward finishes the last layers' gradients
// first, so the first bucket is ready early. engine backward() reports each
// parameter as soon as its gradient is final; when every parameter of the
// next bucket is in, that bucket's all-reduce starts while backward goes on
// computing the earlier layers. Buckets always start in index order, so all
// ranks issue the same collectives in the same order even when their
// backward passes finish parameters in different orders.
//
// A bucket travels as one flat tensor: the gradients, then one presence flag
// per parameter (a rank where a parameter got no gradient sends zeros and
// flag 0, as average_gradients counts it), then the layout check (small
// integers, see layout_check_values: every rank must pack the same layout).
// How the flat tensor is summed over the ranks is a BucketAllReduce: MPI on
// the host in float64 (every rank gets bitwise the same sums), or NCCL on the
// GPU in float32, on its own stream (nn/parallel/nccl_all_reduce.h).
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "nn/parallel/communicator.h"
#include "nn/module.h"

namespace advcl::dist {

// Sums one bucket's flat tensor over the ranks, asynchronously.
class BucketAllReduce {
 public:
  virtual ~BucketAllReduce() = default;
  // The dtype and device the flat tensors must have.
  virtual DType dtype() const = 0;
  virtual Device device() const = 0;
  // Starts summing `flat` [n] over the ranks. Called by every rank for the
  // same buckets in the same order.
  virtual void start(int bucket, Tensor flat) = 0;
  // Waits for `bucket`'s sums (same shape, dtype and device as started).
  virtual Tensor finish(int bucket) = 0;
  // Called between backward steps: lets the transport move started work along.
  virtual void progress() {}
  virtual const char* name() const = 0;
};

// Sums through the communicator's non-blocking float64 all-reduce (MPI),
// with host copies for GPU tensors.
std::unique_ptr<BucketAllReduce> make_mpi_bucket_all_reduce(Communicator& comm);

// Groups parameters of `numels` elements (in registration order) into
// buckets of at most `cap` elements each, in reverse order: bucket 0 holds
// the LAST parameters. A parameter larger than `cap` gets a bucket of its
// own. Returns parameter indices per bucket, each bucket in reverse order.
std::vector<std::vector<size_t>> plan_buckets(const std::vector<int64_t>& numels, int64_t cap);

// The layout check of a bucket. Each rank appends, after the presence flags,
// the base-2^bits digits d of two 64-bit words describing its bucket (the
// value count, and a fingerprint of the members' sizes in order), each as
// d and d*d. After the sum over R ranks, every entry must be R times this
// rank's own: sum(d_r) = R d and sum(d_r^2) = R d^2 give
// sum((d_r - d)^2) = 0, so every rank has the same digits. The digits are
// small enough that every partial sum is an integer the transport's dtype
// holds exactly (float32: 2^24; a bucket's count itself, and its square,
// would not be: a ResNet-18 bucket has ~5.5M values).
//
// The digit width for `ranks` sums in `transport`: the largest bits with
// ranks * (2^bits - 1)^2 <= 2^(significand bits). Throws when not even one
// bit fits (bfloat16 over more than 256 ranks).
int layout_digit_bits(DType transport, int ranks);
// The values a rank appends for a bucket whose members have `numels` values.
std::vector<double> layout_check_values(const std::vector<int64_t>& numels, int bits);
// Whether the summed check `sums` agrees with this rank's `mine` over `ranks`.
bool layout_check_agrees(const std::vector<double>& sums, const std::vector<double>& mine, int ranks);

struct ReducerStats {
  int buckets = 0;
  // Buckets started while backward was still running (the rest started in finish()).
  int started_during_backward = 0;
};

class GradientReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;  // as DDP's default

  // `transport` null: MPI for a CPU model, NCCL for a CUDA model where the
  // build has NCCL (MPI otherwise), and for a group of one a plain backward.
  // A transport given explicitly is used even for a group of one (tests).
  // The parameters must be the same, in the same order, on every rank.
  GradientReducer(nn::StateDict params, Communicator& comm = world(),
                  std::unique_ptr<BucketAllReduce> transport = nullptr,
                  int64_t bucket_bytes = kDefaultBucketBytes);

  // backward(loss), with the buckets' all-reduces started as their
  // gradients become final; when it returns, every parameter's gradient is
  // its mean over the ranks (none where no rank had one).
  void backward(const Tensor& loss);
  // Averages the gradients the parameters hold now (after a plain
  // backward), every bucket at once: what average_gradients() does.
  void average_held_gradients();

  const ReducerStats& last_stats() const { return stats_; }
  const std::vector<std::vector<size_t>>& buckets() const { return buckets_; }

 private:
  void begin_pass();
  void on_ready(const Tensor& leaf);
  void start_ready_buckets();
  void start_bucket(size_t b);
  void finish_all();

  nn::StateDict params_;
  Communicator& comm_;
  std::unique_ptr<BucketAllReduce> transport_;
  bool plain_backward_ = false;  // a group of one with no transport asked for
  std::vector<std::vector<size_t>> buckets_;
  std::vector<size_t> bucket_of_;  // parameter index -> bucket
  std::vector<std::vector<double>> layout_;  // per bucket: its layout_check_values
  std::unordered_map<const TensorImpl*, size_t> index_of_;
  // Per backward pass:
  std::vector<size_t> waiting_;  // parameters of each bucket not yet final
  size_t next_bucket_ = 0;       // buckets [0, next_bucket_) have started
  bool in_backward_ = false;
  ReducerStats stats_;
};

}  // namespace advcl::dist
