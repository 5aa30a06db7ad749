// Learning-rate schedules against values computed by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/common.h"
#include "nn/schedule.h"

using namespace advcl::nn;

TEST(Schedule, PaperCosineAndWarmup) {
  CosineWarmupSchedule s;  // lr 0.5, 1000 epochs, warm-up 10 epochs from 0.01
  EXPECT_DOUBLE_EQ(s.eta_min(), 0.5 * 0.001);
  // warmup_to = 0.0005 + 0.4995 * (1 + cos(pi/100)) / 2
  EXPECT_NEAR(s.warmup_to(), 0.499877, 5e-7);
  EXPECT_NEAR(s.warmup_to(), 0.0005 + 0.4995 * (1 + std::cos(M_PI / 100)) / 2, 1e-15);
  const int64_t nb = 98;  // CIFAR-10 at batch 512
  EXPECT_DOUBLE_EQ(s.lr_at(1, 0, nb), 0.01);
  EXPECT_NEAR(s.lr_at(1, 1, nb), 0.01 + 1.0 / 980 * (s.warmup_to() - 0.01), 1e-15);
  EXPECT_NEAR(s.lr_at(5, 10, nb), 0.01 + (10 + 4 * 98) / 980.0 * (s.warmup_to() - 0.01), 1e-15);
  EXPECT_NEAR(s.lr_at(10, 97, nb), 0.01 + 979 / 980.0 * (s.warmup_to() - 0.01), 1e-15);
  // After the warm-up: the cosine value of the epoch, for every step.
  EXPECT_DOUBLE_EQ(s.lr_at(11, 0, nb), s.epoch_lr(11));
  EXPECT_DOUBLE_EQ(s.lr_at(11, 50, nb), s.epoch_lr(11));
  EXPECT_NEAR(s.epoch_lr(500), 0.0005 + 0.4995 / 2, 1e-15);
  EXPECT_NEAR(s.epoch_lr(1000), 0.0005, 1e-15);
  EXPECT_THROW(s.lr_at(0, 0, nb), advcl::Error);
  EXPECT_THROW(s.lr_at(1, 98, nb), advcl::Error);
}

TEST(Schedule, NoWarmupIsCosine) {
  CosineWarmupSchedule s;
  s.warm = false;
  s.lr = 0.1;
  s.epochs = 10;
  EXPECT_DOUBLE_EQ(s.lr_at(1, 0, 5), s.epoch_lr(1));
  EXPECT_NEAR(s.epoch_lr(1), 0.0001 + 0.0999 * (1 + std::cos(M_PI / 10)) / 2, 1e-15);
}

TEST(Schedule, StepDecayAsReference) {
  // The reference's adjust_lr(lr, epoch - 1): /10 from 0-based epoch 15, again from 20.
  EXPECT_EQ(step_decay_lr(0.01, 0), 0.01);
  EXPECT_EQ(step_decay_lr(0.01, 14), 0.01);
  EXPECT_EQ(step_decay_lr(0.01, 15), 0.01 / 10);
  EXPECT_EQ(step_decay_lr(0.01, 19), 0.01 / 10);
  EXPECT_EQ(step_decay_lr(0.01, 20), 0.01 / 10 / 10);
  EXPECT_EQ(step_decay_lr(0.1, 24), 0.1 / 10 / 10);
  EXPECT_EQ(step_decay_lr(1.0, 7, {3, 5}, 0.5), 0.25);
}
