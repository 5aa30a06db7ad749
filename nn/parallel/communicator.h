// The process group of a data-parallel run, over MPI.
//
// One process per rank: `mpirun -np N advcl ...` or `srun ...` starts them,
// init_from_env() joins them, and world() is the group every collective
// below runs over. Without a launcher (or in a build without MPI,
// ADVCL_MPI=0) world() is a group of one and every collective is a no-op,
// so single-process code needs no special case.
//
// Dead or stuck ranks: every collective is started non-blocking and polled
// against a deadline (timeout_s). If another rank never arrives (it crashed,
// hangs, or took a different code path) the waiting ranks do not block
// forever: by default they print which collective timed out and abort the
// whole job (MPI_Abort), since a half-finished collective leaves the group
// unusable. OnTimeout::Throw raises advcl::Error instead (tests); the
// communicator then refuses further collectives.
//
// Collectives must be called by every rank in the same order with the same
// sizes (MPI's rule); `what` names the call in the timeout message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace advcl::dist {

enum class ReduceOp { Sum, Max, Min };
enum class OnTimeout { Abort, Throw };

class Communicator {
 public:
  // A group of one process (rank 0 of 1), without MPI.
  Communicator() = default;
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Rank among the processes on this machine (picks the GPU), and their number.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  bool is_root() const { return rank_ == 0; }
  bool distributed() const { return size_ > 1; }

  double timeout_s() const { return timeout_s_; }
  void set_timeout(double seconds, OnTimeout policy = OnTimeout::Abort);

  // In place, identical result on every rank.
  void all_reduce(double* data, int64_t n, ReduceOp op, const char* what);
  void all_reduce(float* data, int64_t n, ReduceOp op, const char* what);
  void all_reduce(int64_t* data, int64_t n, ReduceOp op, const char* what);
  // A float32/float64/int64 tensor on any device, in place. `mean` divides
  // the sum by size() (floating tensors only). CUDA tensors are staged
  // through host memory.
  void all_reduce(Tensor& t, ReduceOp op, const char* what);
  void all_reduce_mean(Tensor& t, const char* what);

  // A non-blocking all-reduce (sum) of float64 values, for gradient buckets
  // sent while the backward pass goes on: start_sum() starts it and returns
  // a ticket, finish_sum() waits for it (against the timeout, as every
  // collective) and returns the sums. Every rank starts the same reductions
  // in the same order; each ticket is finished once. progress() lets MPI move
  // started reductions along (Open MPI progresses them only inside MPI calls).
  int64_t start_sum(std::vector<double> values, const char* what);
  std::vector<double> finish_sum(int64_t ticket);
  void progress();

  // Root's bytes into every rank's buffer.
  void broadcast(void* data, size_t bytes, int root, const char* what);
  // Root's values into every rank's tensor (same shape and dtype on all ranks).
  void broadcast(Tensor& t, int root, const char* what);
  void barrier(const char* what);
  // Every rank's `value`, in rank order.
  std::vector<int64_t> all_gather(int64_t value, const char* what);
  // Concatenates every rank's `bytes` (rank order) into `out`, which must
  // hold the sum of `sizes` (each rank's byte count, as all_gather gives it).
  void all_gather_bytes(const void* data, size_t bytes, void* out, const std::vector<int64_t>& sizes,
                        const char* what);

  // A new communicator over the same ranks with its own message space (a
  // collective; tests use it to isolate a deliberately abandoned collective).
  std::unique_ptr<Communicator> duplicate(const char* what);

  // Joins the MPI job (see init_from_env); for world() only.
  static void init_world(int* argc, char*** argv);
  static void finalize_world();

 private:
  struct Impl;
  // Issues a non-blocking collective through `start` and waits for it
  // against the deadline (MPI builds only).
  template <class Start>
  void run_collective(const std::string& what, Start start);
  // Waits for a started collective; on timeout aborts or throws (policy_).
  // `on_abandon` runs before the throw, to keep MPI's buffers alive.
  template <class OnAbandon>
  void await(void* request, const std::string& what, OnAbandon on_abandon);
  void all_reduce_raw(void* data, int64_t n, int kind, size_t elem, ReduceOp op, const char* what);
  void check_usable(const char* what) const;

  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  double timeout_s_ = 600;
  OnTimeout policy_ = OnTimeout::Abort;
  bool broken_ = false;  // a collective timed out under OnTimeout::Throw
  int64_t next_ticket_ = 0;
  std::map<int64_t, std::vector<double>> local_sums_;  // start_sum() results of a group of one
  Impl* impl_ = nullptr;  // MPI handles; null for a group of one
};

// True when this process was started by an MPI launcher (mpirun, mpiexec,
// srun with PMI/PMIx), or ADVCL_DIST=1 forces it.
bool launched_by_mpi();

// Joins the job when launched_by_mpi() (MPI_Init with threads funnelled: only
// the main thread communicates), sets the collective timeout from
// ADVCL_DIST_TIMEOUT (seconds, default 600), and makes world() the job's
// group. Idempotent. Without a launcher or without MPI, world() stays a group of one.
void init_from_env(int* argc, char*** argv);
// Leaves the job (MPI_Finalize). Idempotent; also run at exit.
void finalize();

// The process-global group (a group of one until init_from_env).
Communicator& world();

// Ends the whole job at once after an error on this rank: prints `message`
// with the rank and calls MPI_Abort, so the other ranks do not sit in their
// next collective until the timeout. Outside a distributed run: prints and
// exits with `code`. For main()'s error handler.
[[noreturn]] void abort_job(const std::string& message, int code = 1);

}  // namespace advcl::dist
