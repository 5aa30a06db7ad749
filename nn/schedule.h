// Learning-rate schedules of the reference.
//
// Pretraining (docs/method.md section 11; the reference's adjust_learning_rate and
// warmup_learning_rate): for a 1-based epoch e,
//   cosine(e) = eta_min + (lr - eta_min) * (1 + cos(pi * e / epochs)) / 2,
//   eta_min = lr * decay_rate^3 (decay_rate 0.1);
// with warm-up (on when the batch exceeds 256), during epochs e <= warm_epochs
// (10), per step b (0-based within the epoch, nb steps per epoch):
//   lr = warmup_from + (b + (e-1)*nb) / (warm_epochs*nb) * (warmup_to - warmup_from),
//   warmup_from = 0.01, warmup_to = cosine(warm_epochs).
// For lr 0.5 and 1000 epochs, warmup_to = 0.499877 (to 6 figures).
//
// Finetuning (the reference's adjust_lr(lr, epoch - 1)): for a 0-based epoch
// e, lr * gamma^(number of milestones m with e >= m); milestones {15, 20},
// gamma 0.1.
#pragma once
#include <cstdint>
#include <vector>

namespace advcl::nn {

struct CosineWarmupSchedule {
  double lr = 0.5;
  int64_t epochs = 1000;
  double decay_rate = 0.1;  // eta_min = lr * decay_rate^3
  bool warm = true;         // the reference turns it on for batch > 256
  int64_t warm_epochs = 10;
  double warmup_from = 0.01;

  double eta_min() const;
  // The cosine value for a 1-based epoch (used for the whole epoch after warm-up).
  double epoch_lr(int64_t epoch) const;
  double warmup_to() const { return epoch_lr(warm_epochs); }
  // The rate of step `batch` (0-based) of 1-based `epoch`, nb = steps per epoch.
  double lr_at(int64_t epoch, int64_t batch, int64_t steps_per_epoch) const;
};

// Batch sizes above this turn the warm-up on, as in the reference.
constexpr int64_t kWarmupBatchThreshold = 256;

// lr * gamma^(number of milestones <= epoch), epoch 0-based.
double step_decay_lr(double lr, int64_t epoch, const std::vector<int64_t>& milestones = {15, 20}, double gamma = 0.1);

}  // namespace advcl::nn
