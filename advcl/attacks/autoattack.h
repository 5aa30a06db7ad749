// AutoAttack (Croce & Hein, ICML 2020), standard version, L-inf: APGD-CE,
// APGD-T, FAB-T and Square in turn, each run only on the points that every
// earlier stage left robust (correctly classified and not yet broken), as
// fra31/auto-attack's run_standard_evaluation. The algorithms and where they
// deviate from the reference code: docs/autoattack.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "advcl/attacks/autoattack_util.h"

namespace advcl::autoattack {

struct AutoAttackOptions {
  double epsilon = 8.0 / 255;
  int64_t batch_size = 250;  // points per attack call (the reference's bs)
  uint64_t seed = 0;         // keys every random stream (autoattack_util.h)
  // Point i's random streams use sample = first_index + i: a caller that
  // feeds a data set in chunks passes each chunk's first data-set index, so
  // a point's randomness does not depend on the chunking.
  int64_t first_index = 0;
  // The stages in order; names "apgd-ce", "apgd-t", "fab-t", "square".
  std::vector<std::string> attacks{"apgd-ce", "apgd-t", "fab-t", "square"};
  // The standard version's settings.
  int apgd_iterations = 100;
  int apgd_ce_restarts = 1;
  int target_classes = 9;  // APGD-T and FAB-T
  int fab_iterations = 100;
  int square_queries = 5000;
  double square_p_init = 0.8;
  ProgressFn progress;  // optional: a line per batch and per stage
};

struct AutoAttackStage {
  std::string name;
  int64_t attacked = 0;        // points handed to the stage (those still robust before it)
  int64_t broken = 0;          // of those, misclassified by the stage's examples
  double robust_accuracy = 0;  // over all points, after the stage
  double seconds = 0;
};

struct AutoAttackResult {
  double clean_accuracy = 0;
  double robust_accuracy = 0;  // after the last stage
  std::vector<AutoAttackStage> stages;
  Tensor x_adv;                  // x with each broken point replaced by the example that broke it
  std::vector<uint8_t> robust;   // per point: correctly classified and never broken
  double max_perturbation = 0;   // max over points of ||x_adv - x||_inf
};

// x: [N, C, H, W] float in [0, 1] on the model's device; y: int64 labels [N]
// (any device).
AutoAttackResult run_autoattack(const LogitsFn& model, const Tensor& x, const Tensor& y,
                                const AutoAttackOptions& opt = {});

}  // namespace advcl::autoattack
