#include <gtest/gtest.h>

#include "advcl/attacks/autoattack.h"
#include "engine/ops.h"
#include "tests/advcl/autoattack_linear_model.h"

using namespace advcl;
using namespace advcl::autoattack;
using namespace advcl::autoattack::test_model;

namespace {

AutoAttackOptions small_options(double eps) {
  AutoAttackOptions opt;
  opt.epsilon = eps;
  opt.batch_size = 4;  // several batches per stage
  opt.apgd_iterations = 20;
  opt.fab_iterations = 10;
  opt.square_queries = 300;
  return opt;
}

// The linear data plus two misclassified points (labels changed) at the end.
LinearData with_misclassified(LinearModel& m, LinearData d) {
  std::vector<int64_t> y = d.y.to_vector<int64_t>();
  std::vector<int64_t> pred = predict(m, d.x);
  y[0] = (pred[0] + 1) % m.classes;
  y[1] = (pred[1] + 1) % m.classes;
  d.y = Tensor::from_vector<int64_t>(y, {static_cast<int64_t>(y.size())});
  d.certified[0] = d.certified[1] = 0;
  return d;
}

}  // namespace

TEST(AutoAttack, ExactRobustAccuracyOnALinearModel) {
  LinearModel m = make_linear_model(41);
  const double eps = 0.1;
  LinearData d = with_misclassified(m, make_linear_data(m, eps, 6, 6, 0.05, 42));
  const int64_t N = d.x.size(0);
  AutoAttackOptions opt = small_options(eps);
  // No call ever carries more than a batch.
  int64_t limit = opt.batch_size, violations = 0;
  LogitsFn inner = m.fn();
  LogitsFn watched = [&](const Tensor& x) {
    if (x.size(0) > limit) ++violations;
    return inner(x);
  };
  std::vector<std::string> lines;
  opt.progress = [&](const std::string& line) { lines.push_back(line); };
  AutoAttackResult r = run_autoattack(watched, d.x, d.y, opt);
  EXPECT_EQ(violations, 0);
  EXPECT_NEAR(r.clean_accuracy, static_cast<double>(N - 2) / N, 1e-12);
  ASSERT_EQ(r.stages.size(), 4u);
  EXPECT_EQ(r.stages[0].name, "apgd-ce");
  EXPECT_EQ(r.stages[0].attacked, N - 2);  // the misclassified points are never attacked
  for (size_t s = 1; s < r.stages.size(); ++s)
    EXPECT_EQ(r.stages[s].attacked, r.stages[s - 1].attacked - r.stages[s - 1].broken) << s;
  // Exact: the robust set is the certified set.
  int64_t certified = 0;
  for (int64_t i = 0; i < N; ++i) {
    certified += d.certified[static_cast<size_t>(i)];
    EXPECT_EQ(r.robust[static_cast<size_t>(i)], d.certified[static_cast<size_t>(i)]) << i;
  }
  EXPECT_NEAR(r.robust_accuracy, static_cast<double>(certified) / N, 1e-12);
  EXPECT_NEAR(r.stages.back().robust_accuracy, r.robust_accuracy, 1e-12);
  EXPECT_LE(r.max_perturbation, eps + 1e-12);
  // x_adv: broken points misclassified, every other point untouched.
  std::vector<int64_t> pred = predict(m, r.x_adv), y = d.y.to_vector<int64_t>();
  std::vector<double> dist = linf_distance(r.x_adv, d.x);
  for (int64_t i = 0; i < N; ++i) {
    size_t k = static_cast<size_t>(i);
    if (r.robust[k] || i < 2)
      EXPECT_EQ(dist[k], 0.0) << i;
    else
      EXPECT_NE(pred[k], y[k]) << i;
  }
  EXPECT_FALSE(lines.empty());
}

TEST(AutoAttack, LaterStagesSeeOnlyTheSurvivors) {
  // Without APGD-CE, APGD-T does the breaking; FAB-T and Square then get
  // only the certified points, and the model never sees more rows than that.
  LinearModel m = make_linear_model(43);
  const double eps = 0.1;
  LinearData d = make_linear_data(m, eps, 3, 5, 0.05, 44);
  AutoAttackOptions opt = small_options(eps);
  opt.batch_size = 100;
  opt.attacks = {"apgd-t", "fab-t", "square"};
  int64_t certified = 0;
  for (uint8_t c : d.certified) certified += c;
  int64_t stage = 0, max_rows_after_first = 0;
  LogitsFn inner = m.fn();
  LogitsFn watched = [&](const Tensor& x) {
    if (stage > 0) max_rows_after_first = std::max(max_rows_after_first, x.size(0));
    return inner(x);
  };
  opt.progress = [&](const std::string& line) {
    if (line.rfind("robust accuracy after", 0) == 0) ++stage;
  };
  AutoAttackResult r = run_autoattack(watched, d.x, d.y, opt);
  EXPECT_EQ(r.stages[0].broken, 5);
  EXPECT_EQ(r.stages[1].attacked, certified);
  EXPECT_EQ(r.stages[2].attacked, certified);
  EXPECT_LE(max_rows_after_first, certified);
  EXPECT_GT(max_rows_after_first, 0);
}

TEST(AutoAttack, SameSeedSameResult) {
  LinearModel m = make_linear_model(45);
  LinearData d = make_linear_data(m, 0.1, 3, 3, 0.02, 46);
  AutoAttackOptions opt = small_options(0.1);
  opt.seed = 3;
  AutoAttackResult a = run_autoattack(m.fn(), d.x, d.y, opt), b = run_autoattack(m.fn(), d.x, d.y, opt);
  EXPECT_EQ(a.x_adv.to_vector<double>(), b.x_adv.to_vector<double>());
  EXPECT_EQ(a.robust, b.robust);
  for (size_t s = 0; s < a.stages.size(); ++s) EXPECT_EQ(a.stages[s].broken, b.stages[s].broken);
}

TEST(AutoAttack, Float32Inputs) {
  LinearModel m = make_linear_model(47);
  const double eps = 0.1;
  LinearData d = make_linear_data(m, eps, 3, 3, 0.05, 48);
  LinearModel m32 = m;
  m32.weight = m.weight.to(DType::Float32);
  m32.bias = m.bias.to(DType::Float32);
  AutoAttackResult r = run_autoattack(m32.fn(), d.x.to(DType::Float32), d.y, small_options(eps));
  for (size_t i = 0; i < d.certified.size(); ++i) EXPECT_EQ(r.robust[i], d.certified[i]) << i;
  EXPECT_EQ(r.x_adv.dtype(), DType::Float32);
}

TEST(AutoAttack, RejectsBadArguments) {
  LinearModel m = make_linear_model(49);
  Tensor x = Tensor::zeros({2, 3, 4, 4}, DType::Float64);
  Tensor y = Tensor::from_vector<int64_t>({0, 1}, {2});
  AutoAttackOptions opt;
  opt.attacks = {"apgd-dlr"};
  EXPECT_THROW(run_autoattack(m.fn(), x, y, opt), Error);
  opt = AutoAttackOptions{};
  opt.batch_size = 0;
  EXPECT_THROW(run_autoattack(m.fn(), x, y, opt), Error);
  EXPECT_THROW(run_autoattack(m.fn(), x, Tensor::from_vector<int64_t>({0}, {1}), AutoAttackOptions{}), Error);
}

TEST(AutoAttack, ResultsDoNotDependOnBatchingOrChunking) {
  // Every random stream is keyed by the point's data-set index, so batch size
  // and feeding the data in chunks (with first_index) change nothing.
  LinearModel m = make_linear_model(51);
  LinearData d = make_linear_data(m, 0.1, 3, 3, 0.02, 52);
  AutoAttackOptions opt = small_options(0.1);
  opt.batch_size = 6;
  AutoAttackResult whole = run_autoattack(m.fn(), d.x, d.y, opt);
  opt.batch_size = 2;
  std::vector<double> chunked;
  for (int64_t s = 0; s < 6; s += 3) {
    opt.first_index = s;
    AutoAttackResult r = run_autoattack(m.fn(), d.x.narrow0(s, 3), d.y.narrow0(s, 3), opt);
    std::vector<double> v = r.x_adv.to_vector<double>();
    chunked.insert(chunked.end(), v.begin(), v.end());
  }
  EXPECT_EQ(whole.x_adv.to_vector<double>(), chunked);
}
