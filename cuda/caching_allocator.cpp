#include "cuda/caching_allocator.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <vector>

#include "cuda/base.h"

namespace advcl::cuda {

// A piece of a segment. Blocks of one segment form a doubly linked list in
// address order, so freeing a block finds its neighbours for merging in O(1).
struct CachingAllocator::Block {
  char* ptr = nullptr;
  size_t size = 0;       // rounded, usable size
  size_t requested = 0;  // what the caller asked for (when allocated)
  StreamId stream = 0;
  bool small = false;  // lives in the small pool
  bool allocated = false;
  Block* prev = nullptr;  // neighbours within the segment
  Block* next = nullptr;
};

// Ordered by stream first, so that a search never leaves the caller's stream;
// then by size (best fit is the first block not smaller than the request);
// then by address, to make the order total and the choice deterministic.
bool CachingAllocator::BySize::operator()(const Block* a, const Block* b) const {
  return std::tie(a->stream, a->size, a->ptr) < std::tie(b->stream, b->size, b->ptr);
}

namespace {
std::string human(size_t bytes) {
  char buf[64];
  if (bytes >= (size_t(1) << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(size_t(1) << 30));
  else if (bytes >= (size_t(1) << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / double(size_t(1) << 20));
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof buf, "%.2f KiB", bytes / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%zu B", bytes);
  return buf;
}
}  // namespace

CachingAllocator::CachingAllocator(RawAllocator raw, std::string name, Caching caching)
    : raw_(std::move(raw)), name_(std::move(name)), caching_(caching) {
  if (!raw_.alloc || !raw_.free) fail("CachingAllocator(", name_, "): the raw alloc and free functions must be set");
  st_.caching = caching_ == Caching::on;
}

Caching CachingAllocator::caching_from_env() {
  const char* v = std::getenv("ADVCL_CUDA_NO_CACHE");
  if (!v || !*v || std::strcmp(v, "0") == 0) return Caching::on;
  if (std::strcmp(v, "1") == 0) return Caching::off;
  fail("ADVCL_CUDA_NO_CACHE='", v, "': expected 1 (every tensor its own cudaMalloc, for compute-sanitizer) or 0");
}

CachingAllocator::~CachingAllocator() {
  // Collect every block; the segment heads (no prev) are the raw allocations.
  std::vector<Block*> all(small_.begin(), small_.end());
  all.insert(all.end(), large_.begin(), large_.end());
  for (auto& kv : active_) all.push_back(kv.second);
  for (Block* b : all)
    if (!b->prev) raw_.free(b->ptr);
  for (Block* b : all) delete b;
}

size_t CachingAllocator::round_size(size_t nbytes) {
  if (nbytes < kRound) return kRound;
  return (nbytes + kRound - 1) / kRound * kRound;
}

size_t CachingAllocator::segment_size(size_t rounded) {
  if (rounded <= kSmallRequest) return kSmallSegment;
  if (rounded < kMidRequest) return kMidSegment;
  return (rounded + kLargeRound - 1) / kLargeRound * kLargeRound;
}

// Small blocks split whenever a minimum block remains. Large blocks split only
// when more than a small request's worth remains: smaller leftovers would be
// useless to the large pool, and handing out a little extra is cheaper.
bool CachingAllocator::should_split(const Block* b, size_t rounded) const {
  size_t rest = b->size - rounded;
  return b->small ? rest >= kRound : rest > kSmallRequest;
}

CachingAllocator::Block* CachingAllocator::find_free(Pool& pool, size_t rounded, StreamId stream) {
  Block key;
  key.stream = stream;
  key.size = rounded;
  key.ptr = nullptr;
  auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  Block* b = *it;
  pool.erase(it);
  return b;
}

CachingAllocator::Block* CachingAllocator::new_segment(size_t rounded, StreamId stream, size_t requested) {
  size_t seg = segment_size(rounded);
  void* p = raw_.alloc(seg);
  if (!p) {
    // Out of memory: give back what the cache holds (on every stream) and try once more.
    ++st_.oom_retries;
    release_free_segments();
    p = raw_.alloc(seg);
  }
  if (!p)
    fail(name_, ": out of memory allocating ", human(requested), " (", requested, " bytes, needing a new ", human(seg),
         " segment), even after releasing the cache. ", stats_str_locked(),
         ". Reduce the batch size or free tensors that are still referenced.");
  Block* b = record_segment(p, seg, stream);
  b->small = rounded <= kSmallRequest;
  return b;
}

// The bookkeeping of a fresh raw allocation `p` of `size` bytes: counted as a
// segment, reserved, and wrapped in a Block of its own.
CachingAllocator::Block* CachingAllocator::record_segment(void* p, size_t size, StreamId stream) {
  ++st_.raw_allocs;
  ++st_.segments;
  st_.reserved += size;
  if (st_.reserved > st_.peak_reserved) st_.peak_reserved = st_.reserved;
  Block* b = new Block;
  b->ptr = static_cast<char*>(p);
  b->size = size;
  b->stream = stream;
  return b;
}

// Caching::off: exactly the requested bytes (no rounding, so that the first
// byte past the tensor is outside the raw allocation), one segment each.
void* CachingAllocator::allocate_uncached(size_t nbytes, StreamId stream) {
  void* p = raw_.alloc(nbytes);
  if (!p)
    fail(name_, ": out of memory allocating ", human(nbytes), " (", nbytes, " bytes, cache off). ", stats_str_locked(),
         ". Reduce the batch size or free tensors that are still referenced.");
  Block* b = record_segment(p, nbytes, stream);
  b->allocated = true;
  b->requested = nbytes;
  active_[b->ptr] = b;
  ++st_.allocations;
  ++st_.active_blocks;
  st_.allocated += nbytes;
  st_.requested += nbytes;
  if (st_.allocated > st_.peak_allocated) st_.peak_allocated = st_.allocated;
  return p;
}

void CachingAllocator::free_uncached(Block* b) {
  raw_.free(b->ptr);
  ++st_.raw_frees;
  --st_.segments;
  st_.reserved -= b->size;
  delete b;
}

void* CachingAllocator::allocate(size_t nbytes, StreamId stream) {
  if (nbytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  if (caching_ == Caching::off) return allocate_uncached(nbytes, stream);
  size_t rounded = round_size(nbytes);
  Pool& pool = pool_for(rounded);
  Block* b = find_free(pool, rounded, stream);
  if (b)
    ++st_.cache_hits;
  else
    b = new_segment(rounded, stream, nbytes);

  if (should_split(b, rounded)) {
    // The tail stays free in the same pool and segment.
    Block* rest = new Block;
    rest->ptr = b->ptr + rounded;
    rest->size = b->size - rounded;
    rest->stream = stream;
    rest->small = b->small;
    rest->prev = b;
    rest->next = b->next;
    if (b->next) b->next->prev = rest;
    b->next = rest;
    b->size = rounded;
    pool.insert(rest);
  }
  b->allocated = true;
  b->requested = nbytes;
  active_[b->ptr] = b;

  ++st_.allocations;
  ++st_.active_blocks;
  st_.allocated += b->size;
  st_.requested += nbytes;
  if (st_.allocated > st_.peak_allocated) st_.peak_allocated = st_.allocated;
  return b->ptr;
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(p);
  if (it == active_.end())
    fail(name_, ": freeing pointer ", p, " that the caching allocator did not hand out (or freed twice)");
  Block* b = it->second;
  active_.erase(it);
  st_.allocated -= b->size;
  st_.requested -= b->requested;
  --st_.active_blocks;
  b->allocated = false;
  b->requested = 0;
  if (caching_ == Caching::off) {
    free_uncached(b);
    return;
  }

  // Merge with free neighbours; they sit in the same pool and stream.
  Pool& pool = b->small ? small_ : large_;
  if (b->prev && !b->prev->allocated) {
    Block* prev = b->prev;
    pool.erase(prev);
    prev->size += b->size;
    prev->next = b->next;
    if (b->next) b->next->prev = prev;
    delete b;
    b = prev;
  }
  if (b->next && !b->next->allocated) {
    Block* next = b->next;
    pool.erase(next);
    b->size += next->size;
    b->next = next->next;
    if (next->next) next->next->prev = b;
    delete next;
  }
  pool.insert(b);
}

void CachingAllocator::release_free_segments() {
  for (Pool* pool : {&small_, &large_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (!b->prev && !b->next) {  // the whole segment is this one free block
        raw_.free(b->ptr);
        ++st_.raw_frees;
        --st_.segments;
        st_.reserved -= b->size;
        delete b;
        it = pool->erase(it);
      } else {
        ++it;
      }
    }
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_free_segments();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return st_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  st_.peak_allocated = st_.allocated;
  st_.peak_reserved = st_.reserved;
}

std::string CachingAllocator::stats_str() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_str_locked();
}

std::string CachingAllocator::stats_str_locked() const {
  std::ostringstream os;
  os << name_ << " memory" << (caching_ == Caching::off ? " (cache off)" : "")
     << ": allocated " << human(st_.allocated) << " in " << st_.active_blocks << " blocks, reserved "
     << human(st_.reserved) << " in " << st_.segments << " segments, peak allocated " << human(st_.peak_allocated)
     << ", peak reserved " << human(st_.peak_reserved) << "; raw allocations " << st_.raw_allocs << ", raw frees "
     << st_.raw_frees << ", cache hits " << st_.cache_hits << " of " << st_.allocations;
  return os.str();
}

size_t CachingAllocator::block_size(const void* p) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(p);
  return it == active_.end() ? 0 : it->second->size;
}

}  // namespace advcl::cuda
