// Gradient buckets summed over the ranks by NCCL, on the GPU (the CUDA path
// of GradientReducer, nn/parallel/gradient_reducer.h).
//
// One NCCL communicator per process, for the rank's own GPU: rank 0 makes
// the NCCL unique id and broadcasts it over MPI (the job's communicator),
// then every rank joins with ncclCommInitRank. Each bucket's all-reduce runs
// on a separate stream that first waits for the compute stream (an event:
// the gradients are written), so the reduction overlaps the rest of the
// backward pass; finish() makes the compute stream wait for the reduction's
// event. The flat bucket tensor is kept alive until then, so its memory
// cannot be reused while NCCL still reads or writes it.
//
// A rank that dies leaves the others inside an NCCL kernel: finish() polls
// the reduction's event against the communicator's timeout and then aborts
// the NCCL communicator and the job, as the MPI collectives do.
#pragma once
#include <memory>

#include "nn/parallel/communicator.h"

namespace advcl::dist {

class BucketAllReduce;

// True when this build links NCCL (a CUDA build where the toolkit has it).
bool nccl_available();

// The NCCL transport for parameters on `device` (a CUDA device). A
// collective over `comm` (the unique id's broadcast).
std::unique_ptr<BucketAllReduce> make_nccl_bucket_all_reduce(Communicator& comm, Device device);

}  // namespace advcl::dist
