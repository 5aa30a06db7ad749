// Test-set evaluation of a classifier: clean accuracy (SA) and accuracy under
// an L-inf PGD attack (RA), as the paper's finetuning protocol measures them:
// PGD-20, eps 8/255, step 2/255, start x + U(-eps, eps) (not clamped before
// the first forward), cross-entropy summed over the batch, model in eval mode.
//
// The model is a LogitsFn, so the same code evaluates encoder + classifier,
// a bare linear model in tests, or anything else producing [N, classes].
#pragma once
#include <cstdint>
#include <functional>

#include "advcl/pgd.h"
#include "datasets/batch_loader.h"
#include "engine/tensor.h"

namespace advcl::method {

// images [N, C, H, W] -> logits [N, classes]. Must put the model in whatever
// mode it is evaluated in (the callers here use eval mode).
using LogitsFn = std::function<Tensor(const Tensor& images)>;

struct EvalOptions {
  double epsilon = 8.0 / 255;
  double step = 2.0 / 255;
  int steps = 20;  // 0: no attack, RA = SA
  bool random_start = true;
  uint64_t seed = 0;  // keys the random starts (the same points get the same start every evaluation)
  Device device = Device::cpu();  // where the batches go (the model's device)
};

// Counts over the points seen so far.
struct EvalCounts {
  int64_t n = 0, clean = 0, robust = 0;
  double sa() const { return n ? static_cast<double>(clean) / static_cast<double>(n) : 0.0; }
  double ra() const { return n ? static_cast<double>(robust) / static_cast<double>(n) : 0.0; }
  EvalCounts& operator+=(const EvalCounts& o) {
    n += o.n;
    clean += o.clean;
    robust += o.robust;
    return *this;
  }
};

// How many rows of logits [N, classes] have their argmax at labels [N] (int64).
int64_t count_correct(const Tensor& logits, const Tensor& labels);

// The PGD options of the evaluation attack (pgd.h), from EvalOptions.
PgdOptions eval_attack_options(const EvalOptions& opt);

// PGD maximising the cross-entropy summed over the batch (pgd_linf); the
// evaluation attack, and ALF's training attack with its own options.
Tensor pgd_ce_attack(const LogitsFn& logits, const Tensor& images, const Tensor& labels, const PgdOptions& opt,
                     RngKey start);

// The key of an evaluation batch's random start. `first_index` is the dataset
// index of the batch's first image, so with an unshuffled loader every
// evaluation (each epoch, or `advcl eval` later) attacks from the same starts.
RngKey eval_start_key(const EvalOptions& opt, int64_t first_index);

// SA and RA counts of one batch (images and labels already on the model's device).
EvalCounts evaluate_batch(const LogitsFn& logits, const Tensor& images, const Tensor& labels, const EvalOptions& opt,
                          int64_t first_index);

// One pass over the loader (from its current position to the end of the
// epoch; use an unshuffled loader over the test split). `limit` > 0 stops
// after that many images.
EvalCounts evaluate_pgd(const LogitsFn& logits, data::BatchLoader& loader, const EvalOptions& opt, int64_t limit = 0);

}  // namespace advcl::method
