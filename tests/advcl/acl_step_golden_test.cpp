// One whole ACL-DS step (attack + both streams' NT-Xent + SGD update) against
// PyTorch written the authors' way (tests/golden/make_acl_step_golden.py), and
// proof that the comparison catches the likely mistakes: attacking through the
// wrong BN set or in training mode, or dropping the clean stream.
#include <gtest/gtest.h>

#include "advcl/pretrain/acl_step.h"
#include "nn/checkpoint.h"
#include "tests/golden_util.h"

using namespace advcl;
using advcl::testing_util::close;
using advcl::testing_util::Tolerance;

namespace {

// float64 throughout: the attack must land on the same images.
const Tolerance kExact{1e-9, 1e-12};

class AclStepGolden : public ::testing::Test {
 protected:
  const testing_util::GoldenFile& golden() const {
    return testing_util::GoldenFile::load("tests/golden/acl_step_golden.safetensors");
  }
  Tensor t(const std::string& name) const { return golden().tensor(name); }

  struct Run {
    std::unique_ptr<method::ContrastiveModel> model;
    method::AclStepResult result;
  };

  // The golden's model and optimiser (width 3, float64, SGD lr 0.1, momentum
  // 0.9, weight decay 1e-4), one step with `opt`.
  Run step(const method::AclStepOptions& opt) const {
    method::ContrastiveModelOptions mo;
    mo.backbone.width = 3;
    mo.backbone.num_bn_sets = 2;  // normal, pgd
    mo.pseudo_classes.clear();    // ACL trains no pseudo-label heads
    Run run;
    run.model = std::make_unique<method::ContrastiveModel>(mo);
    run.model->to(DType::Float64);
    nn::load_state_dict(*run.model, golden().with_prefix("init."));
    nn::Sgd sgd(run.model->named_parameters(), {0.1, 0.9, 1e-4});
    run.result = method::acl_step(*run.model, sgd, {t("x1"), t("x2")}, {t("start1"), t("start2")}, opt);
    return run;
  }

  // How many state entries (weights, running statistics, counters) match the
  // golden's after the step, and how many there are.
  std::pair<int, int> matching_state(method::ContrastiveModel& model, bool report) const {
    int matched = 0, total = 0;
    for (const nn::NamedTensor& entry : model.state_dict()) {
      Tensor want = t("final." + entry.name);
      // stored as float32 in the file
      Tolerance tol = want.dtype() == DType::Int64 ? Tolerance{0, 0} : Tolerance{2e-7, 2e-7};
      ::testing::AssertionResult ok = close(entry.name, entry.tensor, want, tol);
      if (report) {
        EXPECT_TRUE(ok);
      }
      matched += static_cast<bool>(ok);
      ++total;
    }
    return {matched, total};
  }
};

}  // namespace

TEST_F(AclStepGolden, MatchesPyTorchReferenceStep) {
  Run run = step(method::AclStepOptions{});
  const method::AclStepResult& r = run.result;
  EXPECT_TRUE(close("x_adv1", r.x1_adv, t("x_adv1"), kExact));
  EXPECT_TRUE(close("x_adv2", r.x2_adv, t("x_adv2"), kExact));
  EXPECT_NEAR(r.loss.item(), t("loss").item(), 1e-9 * std::abs(t("loss").item()));
  EXPECT_NEAR(r.clean.item(), t("loss_clean").item(), 1e-9 * std::abs(t("loss_clean").item()));
  EXPECT_NEAR(r.adv.item(), t("loss_adv").item(), 1e-9 * std::abs(t("loss_adv").item()));
  // Every entry of the state: all parameters after the SGD step, the running
  // statistics of `normal` and `pgd` (one update each: none during the
  // eval-mode attack) and of the projection head (two: one per stream).
  auto [matched, total] = matching_state(*run.model, true);
  EXPECT_EQ(matched, total);
  EXPECT_EQ(total, static_cast<int>(golden().with_prefix("final.").size()));  // nothing of the golden's state is left out

  // The attack moved the views (to the eps ball's edge somewhere) and they
  // stayed images.
  for (const Tensor& adv : {r.x1_adv, r.x2_adv}) {
    std::vector<double> v = adv.to_vector<double>();
    for (double x : v) ASSERT_TRUE(x >= 0 && x <= 1);
  }
  std::vector<double> a = r.x1_adv.to_vector<double>(), x = t("x1").to_vector<double>();
  double moved = 0;
  for (size_t i = 0; i < a.size(); ++i) moved = std::max(moved, std::abs(a[i] - x[i]));
  EXPECT_NEAR(moved, 8.0 / 255, 1e-12);
  EXPECT_TRUE(run.model->is_training());
}

// The comparison can fail: each variant below differs from ACL-DS in one
// choice, and the golden tells it apart.

TEST_F(AclStepGolden, AttackThroughNormalSetDoesNotMatch) {
  method::AclStepOptions opt;
  opt.attack_bn_set = method::kAclNormal;  // the authors' `sameBN` variant
  Run run = step(opt);
  EXPECT_FALSE(close("x_adv1", run.result.x1_adv, t("x_adv1"), kExact));
  EXPECT_FALSE(close("x_adv2", run.result.x2_adv, t("x_adv2"), kExact));
  auto [matched, total] = matching_state(*run.model, false);
  EXPECT_LT(matched, total);
}

TEST_F(AclStepGolden, AttackInTrainingModeDoesNotMatch) {
  method::AclStepOptions opt;
  opt.attack_in_eval_mode = false;  // batch statistics during the attack, as AdvCL attacks
  Run run = step(opt);
  EXPECT_FALSE(close("x_adv1", run.result.x1_adv, t("x_adv1"), kExact));
  auto [matched, total] = matching_state(*run.model, false);
  EXPECT_LT(matched, total);
}

TEST_F(AclStepGolden, WithoutCleanStreamDoesNotMatch) {
  method::AclStepOptions opt;
  opt.adv_weight = 2;  // the adversarial stream alone
  Run run = step(opt);
  // Same attack (the clean stream plays no part in it), different training.
  EXPECT_TRUE(close("x_adv1", run.result.x1_adv, t("x_adv1"), kExact));
  EXPECT_TRUE(close("x_adv2", run.result.x2_adv, t("x_adv2"), kExact));
  EXPECT_NEAR(run.result.adv.item(), t("loss_adv").item(), 1e-9 * std::abs(t("loss_adv").item()));
  EXPECT_GT(std::abs(run.result.loss.item() - t("loss").item()), 1e-3);
  auto [matched, total] = matching_state(*run.model, false);
  EXPECT_LT(matched, total - 50);
}
