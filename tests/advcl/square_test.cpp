#include <gtest/gtest.h>

#include "advcl/attacks/square.h"
#include "engine/ops.h"
#include "tests/advcl/autoattack_linear_model.h"

using namespace advcl;
using namespace advcl::autoattack;
using namespace advcl::autoattack::test_model;

TEST(Square, PSchedule) {
  EXPECT_DOUBLE_EQ(square_p(0, 0.8), 0.8);
  EXPECT_DOUBLE_EQ(square_p(10, 0.8), 0.8);
  EXPECT_DOUBLE_EQ(square_p(11, 0.8), 0.4);
  EXPECT_DOUBLE_EQ(square_p(50, 0.8), 0.4);
  EXPECT_DOUBLE_EQ(square_p(51, 0.8), 0.2);
  EXPECT_DOUBLE_EQ(square_p(201, 0.8), 0.1);
  EXPECT_DOUBLE_EQ(square_p(1000, 0.8), 0.05);
  EXPECT_DOUBLE_EQ(square_p(4999, 0.8), 0.8 / 128);
  EXPECT_DOUBLE_EQ(square_p(8001, 0.8), 0.8 / 512);
}

TEST(Square, SideOnCifar) {
  EXPECT_EQ(square_side(0.8, 32, 32), 29);            // sqrt(819.2) = 28.6
  EXPECT_EQ(square_side(0.8 / 128, 32, 32), 3);       // sqrt(6.4) = 2.5
  EXPECT_EQ(square_side(0.8 / 512, 32, 32), 1);       // sqrt(1.6) = 1.26
  EXPECT_EQ(square_side(6.25 / 1024, 32, 32), 2);   // sqrt(6.25) = 2.5 rounds half to even, as Python
  EXPECT_EQ(square_side(1.0, 4, 4), 4);
}

TEST(Square, Margins) {
  HostLogits h;
  h.rows = 2;
  h.classes = 3;
  h.v = {1, 3, 2, 5, 0, 4};
  std::vector<double> m = margins(h, {2, 0});
  EXPECT_DOUBLE_EQ(m[0], -1);
  EXPECT_DOUBLE_EQ(m[1], 1);
}

TEST(Square, FindsEveryNonRobustPointOfALinearModel) {
  LinearModel m = make_linear_model(31);
  const double eps = 0.1;
  LinearData d = make_linear_data(m, eps, 4, 4, 0.1, 32);
  SquareOptions opt;
  opt.epsilon = eps;
  opt.queries = 1000;
  std::vector<int64_t> y = d.y.to_vector<int64_t>();
  Tensor adv = square_linf(m.fn(), d.x, y, iota_ids(d.x.size(0)), opt);
  expect_exact(m, d, adv, eps, "square");
}

TEST(Square, SameSeedSameResult) {
  LinearModel m = make_linear_model(33);
  LinearData d = make_linear_data(m, 0.1, 2, 2, 0.05, 34);
  SquareOptions opt;
  opt.epsilon = 0.1;
  opt.queries = 100;
  opt.seed = 9;
  std::vector<int64_t> y = d.y.to_vector<int64_t>();
  Tensor a = square_linf(m.fn(), d.x, y, iota_ids(4), opt), b = square_linf(m.fn(), d.x, y, iota_ids(4), opt);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}

TEST(Square, OneQueryPerIterationForAllStillRobustRows) {
  // Certified-robust points never break, so every iteration must query the
  // model once with all of them: clean logits, the stripes, `queries`
  // iterations and the final check, nothing else.
  LinearModel m = make_linear_model(35);
  const double eps = 0.05;
  LinearData d = make_linear_data(m, eps, 5, 0, 0.05, 36);
  SquareOptions opt;
  opt.epsilon = eps;
  opt.queries = 60;
  std::vector<int64_t> rows;
  LogitsFn inner = m.fn();
  LogitsFn counted = [&](const Tensor& x) {
    rows.push_back(x.size(0));
    return inner(x);
  };
  std::vector<int64_t> y = d.y.to_vector<int64_t>();
  Tensor adv = square_linf(counted, d.x, y, iota_ids(5), opt);
  ASSERT_EQ(rows.size(), static_cast<size_t>(opt.queries + 3));
  for (int64_t r : rows) EXPECT_EQ(r, 5);
  EXPECT_EQ(adv.to_vector<double>(), d.x.to_vector<double>());  // nothing broken: x unchanged
}
