#include <gtest/gtest.h>

#include "advcl/square.h"
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
  std::vector<int64_t> pred = predict(m, adv);
  std::vector<double> dist = linf_distance(adv, d.x);
  for (double v : adv.to_vector<double>()) {
    ASSERT_GE(v, 0.0);
    ASSERT_LE(v, 1.0);
  }
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_LE(dist[i], eps + 1e-12);
    if (d.certified[i])
      EXPECT_EQ(pred[i], y[i]) << i;
    else
      EXPECT_NE(pred[i], y[i]) << i;
  }
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
