// A rank that never arrives must not hang the others: their collective
// gives up after the timeout. In-process we use OnTimeout::Throw on a
// duplicate communicator (the late ranks join afterwards, so the abandoned
// collective completes and the suite goes on). The default policy, abort the
// whole job, is proven by the DISABLED_ probes below, which
// tests/mpi/dead_rank.sh runs in their own mpirun (they end the job).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "nn/parallel/communicator.h"
#include "engine/common.h"

using namespace advcl;

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

TEST(DistTimeout, LateRanksMakeRankZeroFailWithinTheTimeout) {
  dist::Communicator& world = dist::world();
  std::unique_ptr<dist::Communicator> c = world.duplicate("timeout test setup");
  if (world.is_root()) {
    c->set_timeout(1.0, dist::OnTimeout::Throw);
    auto t0 = std::chrono::steady_clock::now();
    try {
      c->barrier("the late barrier");
      ADD_FAILURE() << "the barrier completed although the other ranks were late";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("the late barrier"), std::string::npos) << e.what();
    }
    double waited = seconds_since(t0);
    EXPECT_GE(waited, 1.0);
    EXPECT_LT(waited, 2.5);
    // After a timeout the communicator refuses work instead of mismatching.
    double v = 1;
    EXPECT_THROW(c->all_reduce(&v, 1, dist::ReduceOp::Sum, "after the timeout"), Error);
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    c->barrier("the late barrier");  // completes the collective rank 0 abandoned
  }
  // Rank 0 waits (up to the timeout) in the destructor for the late ranks
  // to finish the abandoned barrier: give them ample time.
  c->set_timeout(30, dist::OnTimeout::Throw);
  c.reset();
  world.barrier("after the timeout test");
}

// --- probes for tests/mpi/dead_rank.sh (each ends the job) ---------------

// The last rank hangs (sleeps far past the timeout): rank 0 must abort the
// job with a message naming the collective. ADVCL_DIST_TIMEOUT sets the timeout.
TEST(DeadRankProbe, DISABLED_StuckRank) {
  dist::Communicator& world = dist::world();
  world.set_timeout(std::getenv("ADVCL_DIST_TIMEOUT") ? std::atof(std::getenv("ADVCL_DIST_TIMEOUT")) : 3.0);
  if (world.rank() == world.size() - 1) std::this_thread::sleep_for(std::chrono::seconds(300));
  world.barrier("the probe barrier");
}

// The last rank dies (exits without finalising) while the others wait.
TEST(DeadRankProbe, DISABLED_ExitedRank) {
  dist::Communicator& world = dist::world();
  world.set_timeout(std::getenv("ADVCL_DIST_TIMEOUT") ? std::atof(std::getenv("ADVCL_DIST_TIMEOUT")) : 3.0);
  if (world.rank() == world.size() - 1) std::_Exit(7);
  world.barrier("the probe barrier");
}
