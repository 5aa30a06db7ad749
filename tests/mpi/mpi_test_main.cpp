// Entry point of the multi-process suite (advcl_dist_tests), run only under
// `mpirun -np N` (N >= 2): each process is one rank and runs every test;
// the tests themselves call collectives, so all ranks must run the same
// tests in the same order (no sharding, no shuffling).
//
// Rank 0 prints GoogleTest's usual output; the other ranks print only their
// failures, prefixed with the rank. The exit status is the same on every
// rank: failure if any rank failed.
#include <gtest/gtest.h>

#include <cstdio>

#include "nn/parallel/communicator.h"

namespace {

class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  advcl::dist::init_from_env(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  advcl::dist::Communicator& world = advcl::dist::world();
  if (world.size() < 2) {
    std::fprintf(stderr, "advcl_dist_tests: run me under an MPI launcher with several ranks, e.g.\n"
                         "  mpirun --oversubscribe -np 2 %s\n", argv[0]);
    return 2;
  }
  // Generous for the equivalence tests, so a hang still ends the run.
  world.set_timeout(120);
  if (!world.is_root()) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(world.rank()));
  }
  int64_t failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  world.all_reduce(&failed, 1, advcl::dist::ReduceOp::Max, "test outcome");
  if (world.is_root())
    std::printf("\nadvcl_dist_tests on %d ranks: %s\n", world.size(), failed ? "FAILED" : "passed");
  advcl::dist::finalize();
  return failed ? 1 : 0;
}
