#include "nn/schedule.h"

#include <cmath>

#include "engine/common.h"

namespace advcl::nn {

double CosineWarmupSchedule::eta_min() const { return lr * decay_rate * decay_rate * decay_rate; }

double CosineWarmupSchedule::epoch_lr(int64_t epoch) const {
  if (epochs <= 0) fail("CosineWarmupSchedule: epochs must be positive, got ", epochs);
  const double pi = 3.14159265358979323846;
  double lo = eta_min();
  return lo + (lr - lo) * (1 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(epochs))) / 2;
}

double CosineWarmupSchedule::lr_at(int64_t epoch, int64_t batch, int64_t steps_per_epoch) const {
  if (epoch < 1) fail("CosineWarmupSchedule: epochs are 1-based, got epoch ", epoch);
  if (steps_per_epoch <= 0 || batch < 0 || batch >= steps_per_epoch)
    fail("CosineWarmupSchedule: step ", batch, " is outside an epoch of ", steps_per_epoch, " steps");
  if (!warm || epoch > warm_epochs) return epoch_lr(epoch);
  double p = static_cast<double>(batch + (epoch - 1) * steps_per_epoch) /
             static_cast<double>(warm_epochs * steps_per_epoch);
  return warmup_from + p * (warmup_to() - warmup_from);
}

double step_decay_lr(double lr, int64_t epoch, const std::vector<int64_t>& milestones, double gamma) {
  double out = lr;
  for (int64_t m : milestones)
    if (epoch >= m) out /= 1.0 / gamma;  // the reference divides by 10: same rounding
  return out;
}

}  // namespace advcl::nn
