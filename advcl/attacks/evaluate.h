// Test-set evaluation of a classifier: clean accuracy (SA) and accuracy under
// an L-inf PGD attack (RA), as the paper's finetuning protocol measures them:
// PGD-20, eps 8/255, step 2/255, start x + U(-eps, eps) (not clamped before
// the first forward), cross-entropy summed over the batch, model in eval mode.
//
// The model is a LogitsFn, so the same code evaluates encoder + classifier,
// a bare linear model in tests, or anything else producing [N, classes].
//
// Data parallel (docs/distributed.md): each rank evaluates its shard of the
// test set (cli::shard_eval_loader) and sum_over_ranks adds the counts. A
// point's result depends only on the point (eval-mode BN, per-point loss
// terms, random start keyed by its data-set index), so the sums are the
// counts one process gets.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "advcl/attacks/pgd.h"
#include "datasets/batch_loader.h"
#include "nn/parallel/communicator.h"
#include "engine/tensor.h"

namespace advcl::autoattack {
struct AutoAttackOptions;
}

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

// How many rows of logits [N, classes] have their argmax at labels [N]
// (int64), as a 0-D float64 tensor on their device: counted there, without a
// host round trip.
Tensor correct_count(const Tensor& logits, const Tensor& labels);
// The same count read to the host (one host round trip).
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

// The clean and robust counts of one batch as 0-D float64 tensors on the
// model's device (correct_count): evaluate_pgd adds them up there and reads
// the totals once, at the end.
struct DeviceCounts {
  Tensor clean, robust;
};
DeviceCounts count_batch(const LogitsFn& logits, const Tensor& images, const Tensor& labels, const EvalOptions& opt,
                         int64_t first_index);

// SA and RA counts of one batch (images and labels already on the model's
// device): count_batch and one host read.
EvalCounts evaluate_batch(const LogitsFn& logits, const Tensor& images, const Tensor& labels, const EvalOptions& opt,
                          int64_t first_index);

// One pass over the loader (from its current position to the end of the
// epoch; use an unshuffled loader over the test split). `limit` > 0 stops
// after that many images (of this rank's). Empty batches (a rank's share of
// a short last batch) are skipped. This rank's counts: see sum_over_ranks.
// The batches are uploaded with data::upload and counted on the device: one
// host round trip for the whole pass.
EvalCounts evaluate_pgd(const LogitsFn& logits, data::BatchLoader& loader, const EvalOptions& opt, int64_t limit = 0);

// The counts of all ranks of `comm` added up (one int64 all-reduce),
// identical on every rank. A collective; `c` itself for one rank.
EvalCounts sum_over_ranks(const EvalCounts& c, dist::Communicator& comm = dist::world());

struct AutoAttackCounts {
  EvalCounts counts;  // robust: correctly classified and broken by no stage
  // Per stage of the options' `attacks`, in order: the points it broke.
  std::vector<std::pair<std::string, int64_t>> broken;
};

// AutoAttack (advcl/attacks/autoattack.h) on each batch of the loader in turn, each
// with its first data-set index as `first_index`, so a point's random
// streams depend neither on the batching nor on the rank that attacks it;
// `opt.first_index` is ignored. The images go to `device`. Counts and the
// per-stage numbers are summed over the ranks of `comm` (a collective);
// `progress` (optional) gets a line per batch with this rank's running counts.
AutoAttackCounts evaluate_autoattack(const LogitsFn& logits, data::BatchLoader& loader,
                                     const autoattack::AutoAttackOptions& opt, Device device,
                                     const std::function<void(const EvalCounts&)>& progress = {},
                                     dist::Communicator& comm = dist::world());

}  // namespace advcl::method
