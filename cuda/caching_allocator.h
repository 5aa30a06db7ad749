// A caching allocator for device memory, after the design of PyTorch's
// CUDACachingAllocator: raw device allocation (cudaMalloc) is slow and
// synchronises the device, so memory once obtained is kept and handed out
// again.
//
//  * Requests are rounded up to 512 bytes. Requests of at most 1 MiB come
//    from a "small" pool of 2 MiB segments; larger ones from a "large" pool
//    (requests under 10 MiB get a 20 MiB segment, bigger ones their size
//    rounded up to 2 MiB).
//  * A free block is chosen best-fit (the smallest that fits), split when the
//    rest is worth keeping, and merged with free neighbours of the same
//    segment when freed.
//  * Every block belongs to the stream it was allocated on. Work on one stream
//    runs in order, so a block freed on stream s can be reused at once by
//    stream s; another stream could still race the kernels reading it, so it
//    only gets blocks of its own.
//  * When the raw allocation fails, the cache (every segment that is wholly
//    free) is released and the allocation tried again; if it still fails the
//    error carries the statistics.
//
// The class does bookkeeping only: it allocates through an injected pair of
// functions, so the CPU tests run it over malloc/free and the CUDA build over
// cudaMalloc/cudaFree (cuda/runtime.cu). It is thread-safe.
//
// With Caching::off every request is a raw allocation of exactly the bytes
// asked for, returned to the raw allocator as soon as it is freed. Slow, but
// each tensor then has its own cudaMalloc, so compute-sanitizer's memcheck
// sees an access past a tensor's end (inside the cache it would land in the
// same segment, in a neighbour or a free block, and go unnoticed) and a use
// after free. The process-wide allocators read it from ADVCL_CUDA_NO_CACHE.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace advcl::cuda {

// A stream, as an opaque number (a cudaStream_t cast to an integer).
using StreamId = uintptr_t;

// The raw allocator underneath. `alloc` returns nullptr when out of memory
// (and throws on any other failure); `free` gives a pointer from `alloc` back.
struct RawAllocator {
  std::function<void*(size_t)> alloc;
  std::function<void(void*)> free;
};

struct AllocatorStats {
  size_t allocated = 0;        // bytes in blocks handed out (rounded sizes)
  size_t requested = 0;        // bytes asked for by the blocks handed out
  size_t reserved = 0;         // bytes obtained from the raw allocator and not yet returned
  size_t peak_allocated = 0;   // highest `allocated` since construction or reset_peak()
  size_t peak_reserved = 0;    // highest `reserved`
  uint64_t raw_allocs = 0;     // calls to the raw alloc that succeeded
  uint64_t raw_frees = 0;      // calls to the raw free
  uint64_t allocations = 0;    // calls to allocate() with a nonzero size
  uint64_t cache_hits = 0;     // of those, served without a raw allocation
  uint64_t oom_retries = 0;    // raw allocations retried after releasing the cache
  size_t active_blocks = 0;    // blocks handed out now
  size_t segments = 0;         // raw allocations held now
  bool caching = true;         // false: Caching::off, every block its own raw allocation
};

// Whether freed blocks are kept for reuse (the default) or given back at once.
enum class Caching { on, off };

class CachingAllocator {
 public:
  static constexpr size_t kRound = 512;                // every size is a multiple of this
  static constexpr size_t kSmallRequest = 1 << 20;     // requests up to 1 MiB use the small pool
  static constexpr size_t kSmallSegment = 2 << 20;     // small pool segments are 2 MiB
  static constexpr size_t kMidRequest = 10 << 20;      // large requests under 10 MiB ...
  static constexpr size_t kMidSegment = 20 << 20;      // ... share a 20 MiB segment
  static constexpr size_t kLargeRound = 2 << 20;       // bigger ones are rounded to 2 MiB

  // `name` labels error messages, e.g. "cuda:0".
  CachingAllocator(RawAllocator raw, std::string name, Caching caching = Caching::on);
  ~CachingAllocator();  // returns every segment, in use or not
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `nbytes` for use on `stream`; nullptr for 0 bytes.
  // Throws advcl::Error (with the statistics) when out of memory.
  void* allocate(size_t nbytes, StreamId stream);
  // Returns a block to the cache of the stream it was allocated on. nullptr
  // is ignored; a pointer this allocator did not hand out is an error.
  void free(void* p);
  // Gives every wholly free segment back to the raw allocator.
  void empty_cache();

  AllocatorStats stats() const;
  void reset_peak();
  // One line: allocated, reserved, peaks, raw allocation counts.
  std::string stats_str() const;
  // The usable size of the block at `p` (its rounded size); 0 if unknown.
  size_t block_size(const void* p) const;

  // The size a request is rounded to, and the segment a miss would allocate.
  static size_t round_size(size_t nbytes);
  static size_t segment_size(size_t rounded);

  // The mode the environment asks for: ADVCL_CUDA_NO_CACHE=1 is Caching::off;
  // unset, empty or 0 is Caching::on; any other value is an error.
  static Caching caching_from_env();

 private:
  struct Block;
  struct BySize {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BySize>;

  Pool& pool_for(size_t rounded) { return rounded <= kSmallRequest ? small_ : large_; }
  Block* find_free(Pool& pool, size_t rounded, StreamId stream);
  Block* new_segment(size_t rounded, StreamId stream, size_t requested);
  Block* record_segment(void* p, size_t size, StreamId stream);
  void* allocate_uncached(size_t nbytes, StreamId stream);
  void free_uncached(Block* b);
  bool should_split(const Block* b, size_t rounded) const;
  void release_free_segments();
  std::string stats_str_locked() const;

  RawAllocator raw_;
  std::string name_;
  Caching caching_;
  mutable std::mutex mu_;
  Pool small_, large_;                              // free blocks, by (stream, size, address)
  std::unordered_map<const void*, Block*> active_;  // blocks handed out, by address
  AllocatorStats st_;
};

}  // namespace advcl::cuda
