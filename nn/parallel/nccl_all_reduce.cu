#include "nn/parallel/nccl_all_reduce.h"

#if ADVCL_NCCL
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "cuda/check.cuh"
#include "cuda/runtime.h"
#include "nn/parallel/gradient_reducer.h"

#define ADVCL_NCCL_CHECK(what, call)                                                                \
  do {                                                                                              \
    ncclResult_t advcl_nccl_err_ = (call);                                                          \
    if (advcl_nccl_err_ != ncclSuccess)                                                             \
      ::advcl::fail("dist: ", what, ": ", #call, " failed: ", ncclGetErrorString(advcl_nccl_err_)); \
  } while (0)

namespace advcl::dist {

namespace {

class NcclBucketAllReduce : public BucketAllReduce {
 public:
  NcclBucketAllReduce(Communicator& comm, Device device) : mpi_(comm), device_(device) {
    if (!device.is_cuda()) fail("dist: the NCCL transport needs a CUDA device");
    ncclUniqueId id{};
    if (comm.is_root()) ADVCL_NCCL_CHECK("NCCL set-up", ncclGetUniqueId(&id));
    comm.broadcast(&id, sizeof id, 0, "NCCL unique id");
    cuda::DeviceScope on("NCCL all-reduce", device_.index);
    ADVCL_CUDA_CHECK("NCCL set-up", cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    ADVCL_NCCL_CHECK("NCCL set-up", ncclCommInitRank(&nccl_, comm.size(), id, comm.rank()));
  }
  ~NcclBucketAllReduce() override {
    try {
      cuda::DeviceScope on("NCCL all-reduce", device_.index);
      for (auto& [b, s] : started_) {
        cudaEventDestroy(s.ready);
        cudaEventDestroy(s.done);
      }
      if (nccl_) ncclCommDestroy(nccl_);
      if (stream_) cudaStreamDestroy(stream_);
    } catch (const Error&) {
      // No throw from a destructor: the process is ending or already failed.
    }
  }

  DType dtype() const override { return DType::Float32; }
  Device device() const override { return device_; }
  const char* name() const override { return "NCCL (GPU, float32)"; }

  void start(int bucket, Tensor flat) override {
    cuda::DeviceScope on("NCCL all-reduce", device_.index);
    if (flat.dtype() != DType::Float32 || !flat.device().is_cuda())
      fail("dist: NCCL bucket ", bucket, " must be a float32 CUDA tensor");
    Started s;
    s.flat = flat;
    auto compute = reinterpret_cast<cudaStream_t>(cuda::current_stream());
    ADVCL_CUDA_CHECK("NCCL all-reduce", cudaEventCreateWithFlags(&s.ready, cudaEventDisableTiming));
    ADVCL_CUDA_CHECK("NCCL all-reduce", cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
    // The bucket was packed on the compute stream: NCCL starts after it.
    ADVCL_CUDA_CHECK("NCCL all-reduce", cudaEventRecord(s.ready, compute));
    ADVCL_CUDA_CHECK("NCCL all-reduce", cudaStreamWaitEvent(stream_, s.ready, 0));
    float* p = s.flat.data<float>();
    ADVCL_NCCL_CHECK("gradient bucket",
                     ncclAllReduce(p, p, static_cast<size_t>(s.flat.numel()), ncclFloat32, ncclSum, nccl_, stream_));
    ADVCL_CUDA_CHECK("NCCL all-reduce", cudaEventRecord(s.done, stream_));
    started_[bucket] = s;
  }

  Tensor finish(int bucket) override {
    cuda::DeviceScope on("NCCL all-reduce", device_.index);
    auto it = started_.find(bucket);
    if (it == started_.end()) fail("dist: NCCL bucket ", bucket, " was never started");
    Started s = it->second;
    started_.erase(it);
    wait_or_abort(s.done, bucket);
    auto compute = reinterpret_cast<cudaStream_t>(cuda::current_stream());
    ADVCL_CUDA_CHECK("NCCL all-reduce", cudaStreamWaitEvent(compute, s.done, 0));
    cudaEventDestroy(s.ready);
    cudaEventDestroy(s.done);
    return s.flat;
  }

 private:
  struct Started {
    Tensor flat;  // alive until finish(): NCCL reads and writes it
    cudaEvent_t ready = nullptr, done = nullptr;
  };

  // A dead rank would leave NCCL waiting forever: poll against the job's
  // collective timeout, then abort NCCL and the job.
  void wait_or_abort(cudaEvent_t done, int bucket) {
    auto begin = std::chrono::steady_clock::now();
    for (;;) {
      cudaError_t e = cudaEventQuery(done);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) ADVCL_CUDA_CHECK("NCCL all-reduce", e);
      // "Not ready" is recorded as the thread's last CUDA error: clear it, or
      // the next kernel launch's check (cudaGetLastError) reports it as a
      // failed launch.
      cudaGetLastError();
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(nccl_, &async);
      if (async != ncclSuccess && async != ncclInProgress)
        abort_job(std::string("NCCL all-reduce of gradient bucket ") + std::to_string(bucket) +
                  " failed: " + ncclGetErrorString(async));
      std::chrono::duration<double> waited = std::chrono::steady_clock::now() - begin;
      if (waited.count() > mpi_.timeout_s()) {
        ncclCommAbort(nccl_);
        nccl_ = nullptr;
        abort_job("NCCL all-reduce of gradient bucket " + std::to_string(bucket) + " did not complete within " +
                  std::to_string(mpi_.timeout_s()) + " s: another rank has died, hangs, or took a different path");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  Communicator& mpi_;
  Device device_;
  cudaStream_t stream_ = nullptr;
  ncclComm_t nccl_ = nullptr;
  std::map<int, Started> started_;
};

}  // namespace

bool nccl_available() { return true; }

std::unique_ptr<BucketAllReduce> make_nccl_bucket_all_reduce(Communicator& comm, Device device) {
  return std::make_unique<NcclBucketAllReduce>(comm, device);
}

}  // namespace advcl::dist
#endif  // ADVCL_NCCL
