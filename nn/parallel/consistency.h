// Debug check that data parallelism kept every rank's model identical:
// after the same averaged steps, parameters and buffers (BN running
// statistics) must agree bit for bit on every rank. A mismatch means a
// non-deterministic reduction, a rank that skipped a step, or unsynchronised
// state, and silently wastes the rest of a run; the check names it.
#pragma once
#include <string>

#include "nn/parallel/communicator.h"
#include "nn/module.h"

namespace advcl::dist {

struct ConsistencyReport {
  bool consistent = true;
  std::string first_mismatch;  // name of the first tensor that differs somewhere
  double max_abs_diff = 0;     // its largest |value - rank 0's value| over all ranks
  int mismatched = 0;          // how many tensors differ
};

// Compares every floating tensor of `tensors` (bytes hashed; the max
// difference computed only for those that differ) with rank 0's. A
// collective; the same report on every rank.
ConsistencyReport compare_across_ranks(const nn::StateDict& tensors, Communicator& comm = world());

// Throws on every rank, naming the tensor, when compare_across_ranks finds a
// difference. `when` (e.g. "after step 200") goes into the message.
void check_consistent(const nn::StateDict& tensors, const std::string& when, Communicator& comm = world());

}  // namespace advcl::dist
