// Uploads of host data to a GPU that the host does not wait for.
//
// A plain host-to-device copy from pageable memory (cuda::copy) blocks the
// host until the stream has caught up with it, so uploading each batch
// stalled the host at every step. upload_async instead copies the bytes into
// a page-locked (pinned) staging buffer, queues a cudaMemcpyAsync from it on
// the current stream and returns at once: the host goes on queueing the
// step's kernels while the GPU still runs the previous step's, and the DMA
// needs no bounce through a driver buffer.
//
// The copy runs on the compute stream itself, ordered before the kernels
// that read it. (A separate copy stream would also overlap the DMA with the
// previous step's kernels, but the caching allocator hands a block freed by
// the compute stream to the next request at once, so a copy on another
// stream could overwrite memory a queued kernel still reads.)
//
// Staging buffers are reused once the copy out of them has finished (an
// event per buffer), so steady-state training allocates no pinned memory.
#pragma once
#include <cstddef>

namespace advcl::cuda {

// Queues a copy of `nbytes` from host memory `src` to device memory `dst`
// (on the current device) on the current stream. `src` may be reused as soon
// as this returns. Builds without CUDA: an error.
void upload_async(void* dst, const void* src, size_t nbytes);

// Pinned staging buffers held now (for tests: steady state reuses them).
size_t pinned_staging_buffers();

}  // namespace advcl::cuda
