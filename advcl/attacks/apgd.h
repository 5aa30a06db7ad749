// Auto-PGD, L-inf (Croce & Hein, "Reliable evaluation of adversarial
// robustness with an ensemble of diverse parameter-free attacks", ICML 2020),
// with the cross-entropy loss (APGD-CE) and the targeted DLR loss (APGD-T),
// as run by AutoAttack's standard version.
#pragma once
#include <cstdint>
#include <vector>

#include "advcl/attacks/autoattack_util.h"

namespace advcl::autoattack {

// --- losses (per sample, differentiable in the logits) ---------------------
// Untargeted DLR: -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12), with
// z_pi1 >= z_pi2 >= ... the sorted logits. Needs >= 3 classes.
Tensor dlr_loss(const Tensor& logits, const std::vector<int64_t>& y);
// Targeted DLR: -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12). Needs >= 4 classes.
Tensor dlr_loss_targeted(const Tensor& logits, const std::vector<int64_t>& y, const std::vector<int64_t>& target);
// Cross-entropy per sample: -log softmax(z)_y.
Tensor ce_loss(const Tensor& logits, const std::vector<int64_t>& y);

// --- the step-size schedule -----------------------------------------------
// The iteration counts after which the step size is checked. The paper's
// checkpoints are w_j = ceil(p_j N) with p_0 = 0, p_1 = 0.22,
// p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06); as the reference code we
// use integer period lengths (first period floor(0.22 N), each next one
// shorter by floor(0.03 N), never below floor(0.06 N), all at least 1),
// which avoids the float rounding of ceil(0.41 * 100) = 42.
// For N = 100: 22, 41, 57, 70, 80, 87, 93, 99.
std::vector<int> apgd_checkpoints(int iterations);

enum class ApgdLoss { CE, DLR, DLRTargeted };

struct ApgdOptions {
  double epsilon = 8.0 / 255;
  int iterations = 100;
  int restarts = 1;          // standard version: 1 for APGD-CE and per target class for APGD-T
  int target_classes = 9;    // APGD-T: the 2nd..10th most likely classes at the clean point
  double rho = 0.75;         // halve the step when at most rho of the steps since the last checkpoint increased the loss
  uint64_t seed = 0;
};

// One run from `start` (projected onto the ball and [0,1] first).
struct ApgdRun {
  Tensor x_best_adv;           // the last misclassified iterate per row (the start where never misclassified)
  std::vector<uint8_t> robust;  // never misclassified along the run
  Tensor x_best;               // the iterate of highest loss
  std::vector<double> loss_best;
  std::vector<double> step;    // final step size per row (for tests)
};
ApgdRun apgd_run(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y,
                 const std::vector<int64_t>& target, ApgdLoss loss, const Tensor& start, const ApgdOptions& opt);

// The random start: x + eps * t / max|t|, t ~ U(-1, 1) per element (so the
// largest coordinate sits on the ball's surface), clipped to [0, 1].
// Row r uses the stream (seed, purpose, step, ids[r]).
Tensor apgd_start(const Tensor& x, const std::vector<int64_t>& ids, double eps, uint64_t seed, RngPurpose purpose,
                  uint32_t step);

// APGD-CE over opt.restarts restarts, each on the points not yet broken.
// Returns x with its broken rows replaced by their adversarial examples.
// ids[r]: index of row r in the caller's data set (keys its random start).
Tensor apgd_ce(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y, const std::vector<int64_t>& ids,
               const ApgdOptions& opt);
// APGD-T: for each target rank 2..target_classes+1 (by the clean logits),
// opt.restarts runs with the targeted DLR loss on the points not yet broken.
Tensor apgd_targeted(const LogitsFn& model, const Tensor& x, const std::vector<int64_t>& y,
                     const std::vector<int64_t>& ids, const ApgdOptions& opt);

// The class at rank `rank` (1 = largest) of each row of host logits; ties
// keep the lower class index first.
std::vector<int64_t> class_at_rank(const HostLogits& logits, int rank);

}  // namespace advcl::autoattack
