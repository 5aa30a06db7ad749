// The caching allocator's bookkeeping, run on the CPU over malloc/free (and a
// raw allocator with a budget, to provoke out-of-memory). No GPU needed.
#include "cuda/caching_allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "engine/common.h"

using advcl::cuda::AllocatorStats;
using advcl::cuda::CachingAllocator;
using advcl::cuda::RawAllocator;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * 1024;

// malloc/free with a byte budget; counts what is outstanding.
struct FakeDevice {
  size_t budget = SIZE_MAX;
  size_t in_use = 0;
  std::map<void*, size_t> live;

  RawAllocator raw() {
    RawAllocator r;
    r.alloc = [this](size_t n) -> void* {
      if (in_use + n > budget) return nullptr;
      void* p = std::malloc(n);
      if (!p) return nullptr;
      in_use += n;
      live[p] = n;
      return p;
    };
    r.free = [this](void* p) {
      auto it = live.find(p);
      if (it == live.end()) ADD_FAILURE() << "raw free of a pointer the fake never allocated";
      in_use -= it->second;
      live.erase(it);
      std::free(p);
    };
    return r;
  }
};

char* cp(void* p) { return static_cast<char*>(p); }

}  // namespace

TEST(CachingAllocator, RoundsSizesAndChoosesSegments) {
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::segment_size(512), 2 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(1 * MiB), 2 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(1 * MiB + 512), 20 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(10 * MiB), 10 * MiB);
  EXPECT_EQ(CachingAllocator::segment_size(11 * MiB + 512), 12 * MiB);
}

TEST(CachingAllocator, ZeroBytesAndNullptr) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  EXPECT_EQ(a.allocate(0, 0), nullptr);
  a.free(nullptr);
  EXPECT_EQ(a.stats().raw_allocs, 0u);
  EXPECT_EQ(a.stats().allocations, 0u);
}

TEST(CachingAllocator, SmallRequestsSplitOneSegment) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  void* p0 = a.allocate(1000, 0);
  void* p1 = a.allocate(1000, 0);
  void* p2 = a.allocate(100, 0);
  // One 2 MiB segment, carved in address order (best fit takes the lowest
  // address among equal-sized free blocks; the tail is the only one).
  EXPECT_EQ(cp(p1), cp(p0) + 1024);
  EXPECT_EQ(cp(p2), cp(p1) + 1024);
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.raw_allocs, 1u);
  EXPECT_EQ(s.reserved, 2 * MiB);
  EXPECT_EQ(s.allocated, 1024u + 1024u + 512u);
  EXPECT_EQ(s.requested, 2100u);
  EXPECT_EQ(s.active_blocks, 3u);
  EXPECT_EQ(a.block_size(p2), 512u);
  a.free(p0);
  a.free(p1);
  a.free(p2);
}

TEST(CachingAllocator, FreedBlockIsReusedWithoutRawAllocation) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  void* p = a.allocate(64 * KiB, 0);
  a.free(p);
  for (int i = 0; i < 100; ++i) {  // the hot path: no raw allocation at all
    void* q = a.allocate(64 * KiB, 0);
    EXPECT_EQ(q, p);
    a.free(q);
  }
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.raw_allocs, 1u);
  EXPECT_EQ(s.raw_frees, 0u);
  EXPECT_EQ(s.allocations, 101u);
  EXPECT_EQ(s.cache_hits, 100u);
  EXPECT_EQ(s.allocated, 0u);
  EXPECT_EQ(s.reserved, 2 * MiB);
}

TEST(CachingAllocator, FreeNeighboursCoalesce) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  void* x = a.allocate(4 * KiB, 0);
  void* y = a.allocate(4 * KiB, 0);
  void* z = a.allocate(4 * KiB, 0);
  a.free(x);
  a.free(z);  // merges with the free tail of the segment
  // x and z are free but y splits the segment: nothing can be released.
  a.empty_cache();
  EXPECT_EQ(a.stats().raw_frees, 0u);
  // An 8 KiB request does not fit the 4 KiB hole at x: it goes after y.
  void* w = a.allocate(8 * KiB, 0);
  EXPECT_EQ(cp(w), cp(y) + 4 * KiB);
  a.free(w);
  a.free(y);  // now x, y and the rest form one block: the whole segment
  void* big = a.allocate(1 * MiB, 0);
  EXPECT_EQ(big, x);  // the merged block starts at x
  a.free(big);
  a.empty_cache();
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.raw_frees, 1u);
  EXPECT_EQ(s.reserved, 0u);
  EXPECT_EQ(s.segments, 0u);
  EXPECT_EQ(dev.in_use, 0u);
}

TEST(CachingAllocator, BestFitPicksTheSmallestHole) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  void* big_hole = a.allocate(16 * KiB, 0);
  void* sep1 = a.allocate(512, 0);
  void* small_hole = a.allocate(4 * KiB, 0);
  void* sep2 = a.allocate(512, 0);
  a.free(big_hole);
  a.free(small_hole);
  // Fits all three free blocks (16 KiB, 4 KiB, the tail): takes the 4 KiB one.
  void* p = a.allocate(3 * KiB, 0);
  EXPECT_EQ(p, small_hole);
  // 5 KiB fits only the 16 KiB hole and the tail: takes the hole, splitting it.
  void* q = a.allocate(5 * KiB, 0);
  EXPECT_EQ(q, big_hole);
  void* r = a.allocate(11 * KiB, 0);  // exactly the rest of that hole
  EXPECT_EQ(cp(r), cp(big_hole) + 5 * KiB);
  EXPECT_EQ(a.stats().raw_allocs, 1u);
  for (void* v : {p, q, r, sep1, sep2}) a.free(v);
}

TEST(CachingAllocator, StreamsDoNotShareBlocks) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  void* p1 = a.allocate(8 * KiB, /*stream=*/1);
  a.free(p1);
  // Stream 2 must not get stream 1's block: its kernels could still be reading it.
  void* p2 = a.allocate(8 * KiB, 2);
  EXPECT_NE(p2, p1);
  EXPECT_EQ(a.stats().raw_allocs, 2u);
  // Stream 1 gets its own block back.
  void* q1 = a.allocate(8 * KiB, 1);
  EXPECT_EQ(q1, p1);
  a.free(p2);
  a.free(q1);
  // The split tail of stream 1's segment stays with stream 1 too.
  void* q2 = a.allocate(8 * KiB, 2);
  EXPECT_EQ(q2, p2);
  EXPECT_EQ(a.stats().raw_allocs, 2u);
  a.free(q2);
}

TEST(CachingAllocator, LargePoolSegmentsAndSplitRule) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  void* m1 = a.allocate(5 * MiB, 0);  // a 20 MiB segment, split
  void* m2 = a.allocate(5 * MiB, 0);  // the same segment
  EXPECT_EQ(cp(m2), cp(m1) + 5 * MiB);
  EXPECT_EQ(a.stats().raw_allocs, 1u);
  EXPECT_EQ(a.stats().reserved, 20 * MiB);
  // Over 10 MiB: its own segment, rounded to 2 MiB; the < 1 MiB leftover is
  // not split off, so the block is the whole 12 MiB.
  void* l = a.allocate(11 * MiB + 1, 0);
  EXPECT_EQ(a.block_size(l), 12 * MiB);
  EXPECT_EQ(a.stats().raw_allocs, 2u);
  EXPECT_EQ(a.stats().reserved, 32 * MiB);
  // Small requests never come from the large pool.
  void* s = a.allocate(1 * MiB, 0);
  EXPECT_EQ(a.stats().raw_allocs, 3u);
  EXPECT_EQ(a.stats().reserved, 34 * MiB);
  for (void* v : {m1, m2, l, s}) a.free(v);
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved, 0u);
  EXPECT_EQ(dev.in_use, 0u);
}

TEST(CachingAllocator, OutOfMemoryReleasesTheCacheAndRetries) {
  FakeDevice dev;
  dev.budget = 40 * MiB;
  CachingAllocator a(dev.raw(), "test");
  void* p = a.allocate(15 * MiB, 0);  // 16 MiB segments
  void* q = a.allocate(15 * MiB, 7);
  a.free(p);
  a.free(q);
  EXPECT_EQ(a.stats().reserved, 32 * MiB);
  // 30 MiB does not fit beside the 32 MiB cached (on any stream): the cache
  // goes back and the allocation succeeds on the second try.
  void* r = a.allocate(30 * MiB, 0);
  ASSERT_NE(r, nullptr);
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.oom_retries, 1u);
  EXPECT_EQ(s.raw_frees, 2u);
  EXPECT_EQ(s.reserved, 30 * MiB);
  EXPECT_EQ(dev.in_use, 30 * MiB);
  a.free(r);
}

TEST(CachingAllocator, OutOfMemoryErrorPrintsStatistics) {
  FakeDevice dev;
  dev.budget = 40 * MiB;
  CachingAllocator a(dev.raw(), "cuda:3");
  void* held = a.allocate(30 * MiB, 0);
  try {
    a.allocate(20 * MiB, 0);
    FAIL() << "expected an out-of-memory error";
  } catch (const advcl::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("cuda:3"), std::string::npos) << m;
    EXPECT_NE(m.find("out of memory"), std::string::npos) << m;
    EXPECT_NE(m.find("20.00 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("allocated 30.00 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("reserved 30.00 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("peak allocated"), std::string::npos) << m;
    EXPECT_NE(m.find("raw allocations 1"), std::string::npos) << m;
  }
  // The failure left the allocator consistent.
  EXPECT_EQ(a.stats().allocated, 30 * MiB);
  a.free(held);
  void* again = a.allocate(20 * MiB, 0);  // fits in the cached 30 MiB segment
  EXPECT_EQ(again, held);
  a.free(again);
}

TEST(CachingAllocator, StatisticsTrackPeaks) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  void* p = a.allocate(100 * KiB, 0);
  void* q = a.allocate(200 * KiB, 0);
  a.free(p);
  void* r = a.allocate(50 * KiB, 0);
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.peak_allocated, 300 * KiB);
  EXPECT_EQ(s.allocated, 250 * KiB);
  EXPECT_EQ(s.peak_reserved, 2 * MiB);
  a.reset_peak();
  EXPECT_EQ(a.stats().peak_allocated, 250 * KiB);
  std::string line = a.stats_str();
  EXPECT_NE(line.find("allocated 250.00 KiB in 2 blocks"), std::string::npos) << line;
  a.free(q);
  a.free(r);
  EXPECT_EQ(a.stats().allocated, 0u);
  EXPECT_EQ(a.stats().requested, 0u);
}

TEST(CachingAllocator, BadFreeIsAnError) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  void* p = a.allocate(1024, 0);
  int local = 0;
  EXPECT_THROW(a.free(&local), advcl::Error);
  a.free(p);
  EXPECT_THROW(a.free(p), advcl::Error);  // double free
}

TEST(CachingAllocator, DestructorReturnsEverySegment) {
  FakeDevice dev;
  {
    CachingAllocator a(dev.raw(), "test");
    a.allocate(1000, 0);  // still held at destruction
    void* p = a.allocate(3 * MiB, 1);
    a.allocate(30 * MiB, 2);
    a.free(p);
    EXPECT_GT(dev.in_use, 0u);
  }
  EXPECT_EQ(dev.in_use, 0u);
  EXPECT_TRUE(dev.live.empty());
}

// Random allocations and frees over three streams: live blocks never overlap
// (each is filled with its own byte and checked before it is freed), and once
// everything is freed every segment has coalesced back into one block.
TEST(CachingAllocator, RandomWorkloadKeepsBlocksDisjointAndCoalesces) {
  FakeDevice dev;
  CachingAllocator a(dev.raw(), "test");
  std::mt19937 rng(1234);
  struct Live {
    char* p;
    size_t n;
    unsigned char tag;
  };
  std::vector<Live> live;
  size_t expect_requested = 0;
  for (int step = 0; step < 3000; ++step) {
    bool do_alloc = live.empty() || (rng() % 100) < 55;
    if (do_alloc) {
      size_t n;
      switch (rng() % 4) {
        case 0: n = 1 + rng() % 2048; break;
        case 1: n = 1 + rng() % (1 * MiB); break;
        case 2: n = 1 * MiB + rng() % (11 * MiB); break;
        default: n = 1 + rng() % (64 * KiB); break;
      }
      auto tag = static_cast<unsigned char>(step);
      char* p = cp(a.allocate(n, rng() % 3));
      ASSERT_GE(a.block_size(p), n);
      std::memset(p, tag, n);
      live.push_back({p, n, tag});
      expect_requested += n;
    } else {
      size_t i = rng() % live.size();
      Live l = live[i];
      for (size_t k = 0; k < l.n; k += 97) ASSERT_EQ(static_cast<unsigned char>(l.p[k]), l.tag) << "overlap";
      ASSERT_EQ(static_cast<unsigned char>(l.p[l.n - 1]), l.tag) << "overlap";
      a.free(l.p);
      live[i] = live.back();
      live.pop_back();
      expect_requested -= l.n;
    }
    ASSERT_EQ(a.stats().requested, expect_requested);
  }
  for (const Live& l : live) a.free(l.p);
  AllocatorStats s = a.stats();
  EXPECT_EQ(s.allocated, 0u);
  EXPECT_GT(s.cache_hits, s.allocations / 2);  // the cache did its job
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved, 0u);
  EXPECT_EQ(a.stats().segments, 0u);
  EXPECT_EQ(dev.in_use, 0u);
}

TEST(CachingAllocator, ThreadSafe) {
  CachingAllocator a(RawAllocator{[](size_t n) { return std::malloc(n); }, [](void* p) { std::free(p); }}, "test");
  auto work = [&a](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<void*> mine;
    for (int i = 0; i < 2000; ++i) {
      if (mine.empty() || rng() % 2) {
        mine.push_back(a.allocate(1 + rng() % (256 * KiB), seed % 2));
      } else {
        a.free(mine.back());
        mine.pop_back();
      }
    }
    for (void* p : mine) a.free(p);
  };
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < 4; ++t) ts.emplace_back(work, t + 1);
  for (auto& t : ts) t.join();
  EXPECT_EQ(a.stats().allocated, 0u);
  a.empty_cache();
  EXPECT_EQ(a.stats().reserved, 0u);
}

// Caching::off (ADVCL_CUDA_NO_CACHE=1, for compute-sanitizer): every block is
// a raw allocation of exactly the requested bytes, given back when freed, so
// an access one byte past a tensor leaves its raw allocation. With the cache
// the same byte is inside the segment (the next block starts right there).
TEST(CachingAllocator, CacheOffGivesEveryBlockItsOwnExactRawAllocation) {
  FakeDevice dev;
  CachingAllocator cached(dev.raw(), "test");
  void* c0 = cached.allocate(1000, 0);
  void* c1 = cached.allocate(1000, 0);
  EXPECT_EQ(cp(c1), cp(c0) + 1024);  // c0's byte 1024 is c1's first: invisible to memcheck
  EXPECT_TRUE(cached.stats().caching);
  cached.free(c0);
  cached.free(c1);

  FakeDevice raw_dev;
  CachingAllocator a(raw_dev.raw(), "test", advcl::cuda::Caching::off);
  void* p = a.allocate(1000, 0);
  void* q = a.allocate(1000, 0);
  void* r = a.allocate(5 * MiB + 3, 1);
  ASSERT_EQ(raw_dev.live.size(), 3u);
  EXPECT_EQ(raw_dev.live.at(p), 1000u);  // not rounded to 512
  EXPECT_EQ(raw_dev.live.at(q), 1000u);
  EXPECT_EQ(raw_dev.live.at(r), 5 * MiB + 3);  // not a 20 MiB segment
  EXPECT_EQ(a.block_size(p), 1000u);
  AllocatorStats s = a.stats();
  EXPECT_FALSE(s.caching);
  EXPECT_EQ(s.raw_allocs, 3u);
  EXPECT_EQ(s.segments, 3u);
  EXPECT_EQ(s.allocated, 2000u + 5 * MiB + 3);
  EXPECT_EQ(s.requested, 2000u + 5 * MiB + 3);
  EXPECT_EQ(s.reserved, 2000u + 5 * MiB + 3);
  EXPECT_NE(a.stats_str().find("(cache off)"), std::string::npos) << a.stats_str();

  // Freed at once: the raw allocation is gone, and the next request of the
  // same size is a new raw allocation, never a cache hit.
  a.free(p);
  EXPECT_EQ(raw_dev.live.count(p), 0u);
  EXPECT_EQ(a.stats().raw_frees, 1u);
  void* p2 = a.allocate(1000, 0);
  s = a.stats();
  EXPECT_EQ(s.raw_allocs, 4u);
  EXPECT_EQ(s.cache_hits, 0u);
  EXPECT_EQ(s.allocations, 4u);
  a.free(q);
  a.free(r);
  a.free(p2);
  s = a.stats();
  EXPECT_EQ(s.raw_frees, 4u);
  EXPECT_EQ(s.reserved, 0u);
  EXPECT_EQ(s.segments, 0u);
  EXPECT_EQ(s.allocated, 0u);
  EXPECT_EQ(s.active_blocks, 0u);
  EXPECT_EQ(s.peak_allocated, 2000u + 5 * MiB + 3);
  EXPECT_EQ(raw_dev.in_use, 0u);
  EXPECT_THROW(a.free(p2), advcl::Error);  // double free still caught
}

TEST(CachingAllocator, CacheOffOutOfMemoryAndDestructor) {
  FakeDevice dev;
  dev.budget = 10 * MiB;
  {
    CachingAllocator a(dev.raw(), "cuda:5", advcl::cuda::Caching::off);
    void* held = a.allocate(6 * MiB, 0);
    a.allocate(1000, 2);  // never freed: the destructor returns it
    try {
      a.allocate(6 * MiB, 0);
      FAIL() << "expected an out-of-memory error";
    } catch (const advcl::Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("cuda:5"), std::string::npos) << m;
      EXPECT_NE(m.find("out of memory"), std::string::npos) << m;
      EXPECT_NE(m.find("cache off"), std::string::npos) << m;
    }
    EXPECT_EQ(a.stats().oom_retries, 0u);  // no cache to release
    a.free(held);
    void* again = a.allocate(6 * MiB, 0);  // fits now that `held` went back
    EXPECT_NE(again, nullptr);
    EXPECT_GT(dev.in_use, 6 * MiB);
  }
  EXPECT_EQ(dev.in_use, 0u);
  EXPECT_TRUE(dev.live.empty());
}

// The process-wide allocators take their mode from ADVCL_CUDA_NO_CACHE.
TEST(CachingAllocator, CachingFromEnvironment) {
  const char* name = "ADVCL_CUDA_NO_CACHE";
  const char* old = std::getenv(name);
  std::string saved = old ? old : "";
  unsetenv(name);
  EXPECT_EQ(CachingAllocator::caching_from_env(), advcl::cuda::Caching::on);
  setenv(name, "", 1);
  EXPECT_EQ(CachingAllocator::caching_from_env(), advcl::cuda::Caching::on);
  setenv(name, "0", 1);
  EXPECT_EQ(CachingAllocator::caching_from_env(), advcl::cuda::Caching::on);
  setenv(name, "1", 1);
  EXPECT_EQ(CachingAllocator::caching_from_env(), advcl::cuda::Caching::off);
  setenv(name, "yes", 1);
  try {
    CachingAllocator::caching_from_env();
    ADD_FAILURE() << "expected an error for ADVCL_CUDA_NO_CACHE=yes";
  } catch (const advcl::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("ADVCL_CUDA_NO_CACHE"), std::string::npos) << m;
    EXPECT_NE(m.find("yes"), std::string::npos) << m;
  }
  if (old)
    setenv(name, saved.c_str(), 1);
  else
    unsetenv(name);
}
