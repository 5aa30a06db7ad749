// Named event counters, so that tests can prove what ran: e.g. that an
// input-gradient pass computed no conv weight gradient
// ("conv2d.backward_weight" stays unchanged).
//
// Host round trips have their own lock-free counter (host_syncs()), because
// they are counted on every read of tensor data, in every build:
//   * Tensor::item() and Tensor::to_vector(), on any device;
//   * Tensor::to(device) when the source or the target is the host: on a GPU
//     a copy that the host waits for, on the CPU the call that would be one
//     (x.to(Device::cpu()), or x.to(dev) with dev the CPU);
//   * every copy between host and GPU memory (copy_bytes), which synchronises
//     the stream (cuda/runtime.h), so uploads count on a GPU too.
// Kernels reading CPU tensors through data<T>() do not count, nor does the
// loader's asynchronous upload (data::upload). A CPU test can thus prove that
// a training step would not stall a GPU: the counter stays unchanged.
#pragma once
#include <cstdint>
#include <string>

namespace advcl::counters {

void bump(const char* name, int64_t by = 1);
int64_t get(const std::string& name);
// Clears the named counters (not host_syncs, which only grows).
void reset();

// One host round trip (see above).
void count_host_sync();
// Host round trips since the process started; measure differences.
int64_t host_syncs();

}  // namespace advcl::counters
