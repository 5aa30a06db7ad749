#include "nn/parallel/communicator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#if ADVCL_MPI
// The C API only: the deprecated C++ bindings do not compile warnings-clean.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace advcl::dist {

namespace {

double env_timeout() {
  const char* s = std::getenv("ADVCL_DIST_TIMEOUT");
  if (!s || !*s) return 600;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !(v > 0)) fail("ADVCL_DIST_TIMEOUT must be a positive number of seconds, got '", s, "'");
  return v;
}

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
  }
  return "?";
}

}  // namespace

bool launched_by_mpi() {
  for (const char* v : {"ADVCL_DIST", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"}) {
    const char* s = std::getenv(v);
    if (s && *s) return std::string(v) != "ADVCL_DIST" || std::string(s) == "1";
  }
  return false;
}

#if ADVCL_MPI

struct Communicator::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;  // from duplicate(): freed with the communicator
  // Collectives abandoned after a timeout (OnTimeout::Throw) and the buffers
  // MPI may still write into: kept alive until finalize.
  std::vector<MPI_Request> abandoned;
  std::vector<std::vector<char>> abandoned_buffers;
  std::vector<std::vector<double>> abandoned_sums;
  std::vector<char> scratch;
  // start_sum() reductions in flight, by ticket: MPI owns `values` until done.
  struct PendingSum {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<double> values;
    std::string what;
  };
  std::map<int64_t, PendingSum> pending;
};

namespace {

MPI_Datatype mpi_type(int kind) {
  switch (kind) {
    case 0: return MPI_DOUBLE;
    case 1: return MPI_FLOAT;
    default: return MPI_INT64_T;
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

bool mpi_active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

// Polls `req` until it completes (true) or `timeout_s` passes (false). Short
// sleeps between polls leave the cores to the ranks that are still
// computing: oversubscribed runs (more ranks than cores) would otherwise
// spin against each other. Open MPI progresses non-blocking collectives
// inside MPI_Test, so polling is also what moves the collective forward.
bool wait_for(MPI_Request& req, double timeout_s) {
  auto start = std::chrono::steady_clock::now();
  int done = 0, polls = 0, sleep_us = 1;
  for (;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return true;
    std::chrono::duration<double> waited = std::chrono::steady_clock::now() - start;
    if (waited.count() > timeout_s) return false;
    if (++polls > 64) {
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
      sleep_us = std::min(sleep_us * 2, 200);
    }
  }
}

}  // namespace

Communicator::~Communicator() {
  if (impl_ && mpi_active()) {
    // MPI may still write into an abandoned collective's buffer: give the
    // late ranks one more timeout to finish it before the buffer goes.
    bool settled = true;
    for (MPI_Request& r : impl_->abandoned) settled = wait_for(r, timeout_s_) && settled;
    if (!settled) {
      impl_ = nullptr;  // leak the buffers rather than free them under MPI
      return;
    }
    if (impl_->owned) MPI_Comm_free(&impl_->comm);
  }
  delete impl_;
}

void Communicator::check_usable(const char* what) const {
  if (broken_)
    fail("dist: ", what, ": this communicator is unusable after an earlier collective timed out (rank ", rank_,
         " of ", size_, ")");
}

// `start` issues the non-blocking collective. On timeout the scratch buffer
// moves to the abandoned list, since MPI may still write into it.
template <class Start>
void Communicator::run_collective(const std::string& what, Start start) {
  MPI_Request req = MPI_REQUEST_NULL;
  start(req);
  await(&req, what, [this] {
    impl_->abandoned_buffers.push_back(std::move(impl_->scratch));
    impl_->scratch = {};
  });
}

template <class OnAbandon>
void Communicator::await(void* request, const std::string& what, OnAbandon on_abandon) {
  MPI_Request& req = *static_cast<MPI_Request*>(request);
  if (wait_for(req, timeout_s_)) return;
  std::fprintf(stderr,
               "advcl dist: rank %d of %d: %s did not complete within %g s: another rank has died, hangs, "
               "or took a different path (see the other ranks' messages). %s\n",
               rank_, size_, what.c_str(), timeout_s_,
               policy_ == OnTimeout::Abort ? "Aborting the run." : "Giving up on this communicator.");
  std::fflush(stderr);
  if (policy_ == OnTimeout::Abort) MPI_Abort(MPI_COMM_WORLD, 3);
  broken_ = true;
  impl_->abandoned.push_back(req);
  on_abandon();
  fail("dist: rank ", rank_, " of ", size_, ": ", what, " timed out after ", timeout_s_,
       " s (another rank died, hangs, or took a different path)");
}

void Communicator::all_reduce_raw(void* data, int64_t n, int kind, size_t elem, ReduceOp op, const char* what) {
  if (size_ == 1 || n == 0) return;
  check_usable(what);
  // MPI counts are int: large buffers go in chunks.
  const int64_t chunk = int64_t{1} << 28;
  for (int64_t at = 0; at < n; at += chunk) {
    int64_t m = std::min(chunk, n - at);
    char* p = static_cast<char*>(data) + static_cast<size_t>(at) * elem;
    impl_->scratch.assign(p, p + static_cast<size_t>(m) * elem);
    std::string label = std::string(what) + " (all-reduce " + op_name(op) + " of " + std::to_string(n) + " values)";
    run_collective(label, [&](MPI_Request& req) {
      MPI_Iallreduce(MPI_IN_PLACE, impl_->scratch.data(), static_cast<int>(m), mpi_type(kind), mpi_op(op),
                     impl_->comm, &req);
    });
    std::memcpy(p, impl_->scratch.data(), static_cast<size_t>(m) * elem);
  }
}

void Communicator::broadcast(void* data, size_t bytes, int root, const char* what) {
  if (root < 0 || root >= size_) fail("dist: ", what, ": broadcast root ", root, " is not a rank of ", size_);
  if (size_ == 1 || bytes == 0) return;
  check_usable(what);
  const size_t chunk = size_t{1} << 30;
  for (size_t at = 0; at < bytes; at += chunk) {
    size_t m = std::min(chunk, bytes - at);
    char* p = static_cast<char*>(data) + at;
    impl_->scratch.assign(p, p + m);
    std::string label = std::string(what) + " (broadcast of " + std::to_string(bytes) + " bytes from rank " +
                        std::to_string(root) + ")";
    run_collective(label, [&](MPI_Request& req) {
      MPI_Ibcast(impl_->scratch.data(), static_cast<int>(m), MPI_BYTE, root, impl_->comm, &req);
    });
    std::memcpy(p, impl_->scratch.data(), m);
  }
}

void Communicator::barrier(const char* what) {
  if (size_ == 1) return;
  check_usable(what);
  std::string label = std::string(what) + " (barrier)";
  run_collective(label, [&](MPI_Request& req) { MPI_Ibarrier(impl_->comm, &req); });
}

std::vector<int64_t> Communicator::all_gather(int64_t value, const char* what) {
  if (size_ == 1) return {value};
  check_usable(what);
  impl_->scratch.assign(static_cast<size_t>(size_) * sizeof(int64_t), 0);
  std::string label = std::string(what) + " (all-gather of one value)";
  run_collective(label, [&](MPI_Request& req) {
    MPI_Iallgather(&value, 1, MPI_INT64_T, impl_->scratch.data(), 1, MPI_INT64_T, impl_->comm, &req);
  });
  std::vector<int64_t> out(static_cast<size_t>(size_));
  std::memcpy(out.data(), impl_->scratch.data(), out.size() * sizeof(int64_t));
  return out;
}

void Communicator::all_gather_bytes(const void* data, size_t bytes, void* out, const std::vector<int64_t>& sizes,
                                    const char* what) {
  if (static_cast<int>(sizes.size()) != size_ || sizes[static_cast<size_t>(rank_)] != static_cast<int64_t>(bytes))
    fail("dist: ", what, ": all_gather_bytes needs every rank's size, this rank's being ", bytes);
  if (size_ == 1) {
    if (bytes) std::memcpy(out, data, bytes);
    return;
  }
  check_usable(what);
  std::vector<int> counts, displs;
  int64_t total = 0;
  for (int64_t n : sizes) {
    if (n < 0 || total + n > INT32_MAX) fail("dist: ", what, ": all-gather of over 2 GiB is not supported");
    counts.push_back(static_cast<int>(n));
    displs.push_back(static_cast<int>(total));
    total += n;
  }
  // The send side is copied too: MPI must not read a buffer the caller may
  // free after a timeout.
  std::vector<char> send(static_cast<const char*>(data), static_cast<const char*>(data) + bytes);
  impl_->scratch.assign(static_cast<size_t>(total) + bytes, 0);
  std::memcpy(impl_->scratch.data() + total, send.data(), bytes);
  std::string label = std::string(what) + " (all-gather of " + std::to_string(total) + " bytes)";
  run_collective(label, [&](MPI_Request& req) {
    MPI_Iallgatherv(impl_->scratch.data() + total, static_cast<int>(bytes), MPI_BYTE, impl_->scratch.data(),
                    counts.data(), displs.data(), MPI_BYTE, impl_->comm, &req);
  });
  std::memcpy(out, impl_->scratch.data(), static_cast<size_t>(total));
}

std::unique_ptr<Communicator> Communicator::duplicate(const char* what) {
  auto c = std::make_unique<Communicator>();
  c->rank_ = rank_;
  c->size_ = size_;
  c->local_rank_ = local_rank_;
  c->local_size_ = local_size_;
  c->timeout_s_ = timeout_s_;
  c->policy_ = policy_;
  if (size_ == 1) return c;
  check_usable(what);
  c->impl_ = new Impl;
  c->impl_->owned = true;
  std::string label = std::string(what) + " (communicator duplicate)";
  run_collective(label, [&](MPI_Request& req) { MPI_Comm_idup(impl_->comm, &c->impl_->comm, &req); });
  return c;
}

void Communicator::init_world(int* argc, char*** argv) {
  Communicator& w = world();
  if (w.impl_) return;
  int init = 0;
  MPI_Initialized(&init);
  if (!init) {
    int provided = 0;
    // Only the main thread communicates; loader threads never call MPI.
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail("dist: MPI_Init_thread failed");
    std::atexit(finalize);
  }
  w.impl_ = new Impl;
  w.impl_->comm = MPI_COMM_WORLD;
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size_);
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w.rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &w.local_rank_);
  MPI_Comm_size(node, &w.local_size_);
  MPI_Comm_free(&node);
  w.timeout_s_ = env_timeout();
}

void Communicator::finalize_world() {
  if (!mpi_active()) return;
  Communicator& w = world();
  // A collective abandoned after a timeout must have been finished by the
  // late rank before MPI_Finalize, or finalising would hang.
  if (w.impl_)
    for (MPI_Request& r : w.impl_->abandoned)
      if (!wait_for(r, w.timeout_s_)) {
        std::fprintf(stderr, "advcl dist: rank %d: an abandoned collective never completed; aborting\n", w.rank_);
        MPI_Abort(MPI_COMM_WORLD, 3);
      }
  MPI_Finalize();
}

#else  // !ADVCL_MPI: a group of one; the collectives are no-ops.

struct Communicator::Impl {};

Communicator::~Communicator() { delete impl_; }
void Communicator::check_usable(const char*) const {}
void Communicator::all_reduce_raw(void*, int64_t, int, size_t, ReduceOp, const char*) {}
void Communicator::broadcast(void*, size_t, int root, const char* what) {
  if (root != 0) fail("dist: ", what, ": broadcast root ", root, " is not a rank of 1");
}
void Communicator::barrier(const char*) {}
std::vector<int64_t> Communicator::all_gather(int64_t value, const char*) { return {value}; }
void Communicator::all_gather_bytes(const void* data, size_t bytes, void* out, const std::vector<int64_t>& sizes,
                                    const char* what) {
  if (sizes.size() != 1 || sizes[0] != static_cast<int64_t>(bytes))
    fail("dist: ", what, ": all_gather_bytes needs every rank's size, this rank's being ", bytes);
  if (bytes) std::memcpy(out, data, bytes);
}
std::unique_ptr<Communicator> Communicator::duplicate(const char*) { return std::make_unique<Communicator>(); }
void Communicator::init_world(int*, char***) {
  // Several processes that each think they are alone would overwrite each
  // other's checkpoints: refuse instead.
  if (launched_by_mpi())
    fail("dist: started by an MPI launcher, but this build has no MPI (ADVCL_MPI=0); install Open MPI "
         "(libopenmpi-dev) and rebuild, or run without mpirun");
  world().timeout_s_ = env_timeout();
}
void Communicator::finalize_world() {}

#endif  // ADVCL_MPI

int64_t Communicator::start_sum(std::vector<double> values, const char* what) {
  int64_t ticket = next_ticket_++;
  if (size_ == 1) {
    local_sums_[ticket] = std::move(values);
    return ticket;
  }
#if ADVCL_MPI
  check_usable(what);
  if (values.size() > static_cast<size_t>(INT32_MAX))
    fail("dist: ", what, ": a non-blocking all-reduce of ", values.size(), " values is over MPI's count limit");
  Impl::PendingSum& p = impl_->pending[ticket];
  p.values = std::move(values);
  p.what = std::string(what) + " (non-blocking all-reduce sum of " + std::to_string(p.values.size()) + " values)";
  MPI_Iallreduce(MPI_IN_PLACE, p.values.data(), static_cast<int>(p.values.size()), MPI_DOUBLE, MPI_SUM, impl_->comm,
                 &p.request);
#else
  (void)what;
#endif
  return ticket;
}

std::vector<double> Communicator::finish_sum(int64_t ticket) {
  if (size_ == 1) {
    auto it = local_sums_.find(ticket);
    if (it == local_sums_.end()) fail("dist: finish_sum: no reduction with ticket ", ticket, " was started");
    std::vector<double> v = std::move(it->second);
    local_sums_.erase(it);
    return v;
  }
#if ADVCL_MPI
  auto it = impl_->pending.find(ticket);
  if (it == impl_->pending.end()) fail("dist: finish_sum: no reduction with ticket ", ticket, " is in flight");
  std::string what = it->second.what;
  check_usable(what.c_str());
  await(&it->second.request, what, [&] {
    // MPI may still write into the values: keep them until finalize.
    impl_->abandoned_sums.push_back(std::move(it->second.values));
    impl_->pending.erase(it);
  });
  std::vector<double> v = std::move(it->second.values);
  impl_->pending.erase(it);
  return v;
#else
  fail("dist: finish_sum: no MPI in this build");
#endif
}

void Communicator::progress() {
#if ADVCL_MPI
  if (size_ == 1) return;
  for (auto& [ticket, p] : impl_->pending) {
    int done = 0;
    MPI_Test(&p.request, &done, MPI_STATUS_IGNORE);
  }
#endif
}

void Communicator::set_timeout(double seconds, OnTimeout policy) {
  if (!(seconds > 0)) fail("dist: the collective timeout must be positive, got ", seconds);
  timeout_s_ = seconds;
  policy_ = policy;
}

void Communicator::all_reduce(double* data, int64_t n, ReduceOp op, const char* what) {
  all_reduce_raw(data, n, 0, sizeof(double), op, what);
}
void Communicator::all_reduce(float* data, int64_t n, ReduceOp op, const char* what) {
  all_reduce_raw(data, n, 1, sizeof(float), op, what);
}
void Communicator::all_reduce(int64_t* data, int64_t n, ReduceOp op, const char* what) {
  all_reduce_raw(data, n, 2, sizeof(int64_t), op, what);
}

void Communicator::all_reduce(Tensor& t, ReduceOp op, const char* what) {
  if (size_ == 1) return;
  Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  switch (host.dtype()) {
    case DType::Float64: all_reduce(host.data<double>(), host.numel(), op, what); break;
    case DType::Float32: all_reduce(host.data<float>(), host.numel(), op, what); break;
    case DType::Int64: all_reduce(host.data<int64_t>(), host.numel(), op, what); break;
    default: fail("dist: ", what, ": all-reduce supports float32, float64 and int64 tensors, got ", dtype_name(host.dtype()));
  }
  if (!host.same(t)) t.copy_(host);
}

void Communicator::all_reduce_mean(Tensor& t, const char* what) {
  if (!is_floating(t.dtype())) fail("dist: ", what, ": the mean of a ", dtype_name(t.dtype()), " tensor");
  if (size_ == 1) return;
  all_reduce(t, ReduceOp::Sum, what);
  Tensor host = t.to(Device::cpu()).to(DType::Float64);
  std::vector<double> v = host.to_vector<double>();
  for (double& x : v) x /= size_;
  t.copy_(Tensor::from_vector<double>(v, t.shape()));
}

void Communicator::broadcast(Tensor& t, int root, const char* what) {
  if (size_ == 1) {
    broadcast(nullptr, 0, root, what);
    return;
  }
  Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  broadcast(host.raw_data(), host.nbytes(), root, what);
  if (!host.same(t)) t.copy_(host);
}

void init_from_env(int* argc, char*** argv) {
  if (launched_by_mpi() || world().distributed()) Communicator::init_world(argc, argv);
}

void finalize() { Communicator::finalize_world(); }

void abort_job(const std::string& message, int code) {
  Communicator& w = world();
  if (w.distributed())
    std::fprintf(stderr, "advcl: rank %d of %d: %s\nadvcl: ending all ranks\n", w.rank(), w.size(), message.c_str());
  else
    std::fprintf(stderr, "advcl: %s\n", message.c_str());
  std::fflush(stderr);
#if ADVCL_MPI
  if (w.distributed()) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

Communicator& world() {
  static Communicator w;
  return w;
}

}  // namespace advcl::dist
