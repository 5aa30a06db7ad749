// SA / RA evaluation (advcl/attacks/evaluate.h): PGD on a linear model, where the
// robust accuracy is known in closed form.
#include <gtest/gtest.h>

#include <cmath>

#include "advcl/attacks/evaluate.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"

using namespace advcl;

namespace {

// A two-class linear model logits = x W^T + b on flat inputs [N, D].
struct Linear2 {
  Tensor w, b;  // [2, D], [2]
  Tensor operator()(const Tensor& x) const { return ops::linear(x, w.to(x.dtype()), b.to(x.dtype())); }
};

// The margin of the worst L-inf perturbation of size eps, ignoring the [0, 1]
// box (the test points stay away from it):
//   (w_y - w_j).x + (b_y - b_j) - eps * ||w_y - w_j||_1,  j the other class.
// For two classes the CE gradient is -(1 - p_y)(w_y - w_j), whose sign is the
// worst direction everywhere, so PGD with enough steps reaches this corner
// exactly; the point is robust iff the margin is positive. (With more classes
// CE ascent need not find the worst j; the binary case is exact.)
double robust_margin(const std::vector<double>& w, const std::vector<double>& b, const double* x, int64_t D,
                     int64_t y, double eps) {
  int64_t j = 1 - y;
  double m = b[y] - b[j];
  for (int64_t d = 0; d < D; ++d) {
    double dw = w[y * D + d] - w[j * D + d];
    m += dw * x[d] - eps * std::fabs(dw);
  }
  return m;
}

}  // namespace

TEST(Evaluate, CountCorrectTakesTheFirstArgmax) {
  Tensor logits = Tensor::from_vector<double>({1, 3, 2, 5, 5, 0, 0, 0, 1}, {3, 3});
  Tensor labels = Tensor::from_vector<int64_t>({1, 0, 1}, {3});
  EXPECT_EQ(method::count_correct(logits, labels), 2);  // row 1 ties 5, 5: argmax 0, as torch
  EXPECT_THROW(method::count_correct(logits, Tensor::from_vector<int64_t>({1, 0}, {2})), Error);
}

TEST(Evaluate, PgdRobustAccuracyOfALinearModelIsTheClosedForm) {
  const int64_t N = 400, D = 100;
  for (uint32_t trial = 0; trial < 3; ++trial) {
    Linear2 model{advcl::testing::random_tensor({2, D}, 10 + trial, -1, 1), advcl::testing::random_tensor({2}, 20 + trial, -0.2, 0.2)};
    // Inputs inside [0.1, 0.9]: the attack (eps 8/255 plus the uniform start)
    // never reaches the box edges.
    Tensor x = advcl::testing::random_tensor({N, D}, 30 + trial, 0.1, 0.9);
    // Labels: the clean prediction for most points, the other class for every fifth.
    std::vector<int64_t> pred = ops::argmax(model(x), 1).to_vector<int64_t>(), labels(N);
    for (int64_t i = 0; i < N; ++i) labels[i] = i % 5 == 4 ? 1 - pred[i] : pred[i];
    Tensor y = Tensor::from_vector<int64_t>(labels, {N});

    method::EvalOptions opt;  // PGD-20, eps 8/255, step 2/255, random start
    std::vector<double> w = model.w.to_vector<double>(), b = model.b.to_vector<double>(),
                        xs = x.to_vector<double>();
    int64_t robust = 0, clean = 0;
    double closest = 1;
    for (int64_t i = 0; i < N; ++i) {
      double m = robust_margin(w, b, xs.data() + i * D, D, labels[i], opt.epsilon);
      robust += m > 0;
      clean += labels[i] == pred[i];
      closest = std::min(closest, std::fabs(m));
    }
    ASSERT_GT(closest, 1e-9) << "a point sits on the robustness boundary; change the data";
    ASSERT_GT(robust, N / 10);
    ASSERT_LT(robust, clean - N / 10) << "the attack must matter for the test to mean something";
    std::printf("trial %u: clean %lld, robust (closed form) %lld of %lld\n", trial, static_cast<long long>(clean),
                static_cast<long long>(robust), static_cast<long long>(N));

    method::EvalCounts c = method::evaluate_batch(model, x, y, opt, 0);
    EXPECT_EQ(c.n, N);
    EXPECT_EQ(c.clean, clean);
    EXPECT_EQ(c.robust, robust) << "trial " << trial;
  }
}

TEST(Evaluate, NoAttackGivesRaEqualToSa) {
  Linear2 model{advcl::testing::random_tensor({2, 5}, 1), advcl::testing::random_tensor({2}, 2)};
  Tensor x = advcl::testing::random_tensor({50, 5}, 3, 0, 1);
  Tensor y = Tensor::from_vector<int64_t>(std::vector<int64_t>(50, 1), {50});
  method::EvalOptions opt;
  opt.steps = 0;
  method::EvalCounts c = method::evaluate_batch(model, x, y, opt, 0);
  EXPECT_EQ(c.robust, c.clean);
  EXPECT_GT(c.clean, 0);
  EXPECT_LT(c.clean, 50);
}

TEST(Evaluate, LoaderPassAddsUpBatchesAndMatchesTheClosedForm) {
  // 60 images 1x2x3 (D = 6) of random bytes; the loader's ToFloat divides by 255.
  const int64_t N = 60, D = 6;
  auto ds = std::make_shared<data::ImageDataset>();
  ds->name = "linear test";
  ds->n = N;
  ds->channels = 1;
  ds->height = 2;
  ds->width = 3;
  ds->num_classes = 2;
  ds->class_names = {"a", "b"};
  std::vector<double> px = advcl::testing::random_tensor({N, D}, 40, 30, 225).to_vector<double>();
  for (double v : px) ds->images.push_back(static_cast<uint8_t>(v));
  Linear2 model{advcl::testing::random_tensor({2, D}, 41).to(DType::Float32), advcl::testing::random_tensor({2}, 42, -0.1, 0.1)};
  std::vector<double> w;
  for (float v : model.w.to_vector<float>()) w.push_back(v);
  std::vector<double> b = model.b.to_vector<double>();
  method::EvalOptions opt;
  int64_t robust = 0, clean = 0;
  for (int64_t i = 0; i < N; ++i) {
    std::vector<double> x(D);
    for (int64_t d = 0; d < D; ++d) x[d] = static_cast<float>(ds->images[i * D + d] / 255.0f);
    double s0 = b[0], s1 = b[1];
    for (int64_t d = 0; d < D; ++d) {
      s0 += w[d] * x[d];
      s1 += w[D + d] * x[d];
    }
    int64_t y = (s1 > s0) == (i % 3 != 0) ? 1 : 0;  // two thirds labelled as predicted
    ds->labels.push_back(y);
    double m = robust_margin(w, b, x.data(), D, y, opt.epsilon);
    ASSERT_GT(std::fabs(m), 1e-4) << "point " << i << " is too close to the boundary for float32";
    robust += m > 0;
    clean += (y == 1) == (s1 > s0);
  }
  ds->check();
  ASSERT_LT(robust, clean) << "the attack must matter for the test to mean something";
  method::LogitsFn flat = [&](const Tensor& images) { return model(ops::flatten(images)); };
  for (int64_t batch : {7, 60}) {
    data::LoaderOptions lo;
    lo.batch_size = batch;
    lo.shuffle = false;
    lo.workers = 0;
    data::BatchLoader loader(ds, std::make_shared<data::ToFloat>(), lo);
    method::EvalCounts c = method::evaluate_pgd(flat, loader, opt);
    EXPECT_EQ(c.n, N);
    EXPECT_EQ(c.clean, clean) << "batch " << batch;
    EXPECT_EQ(c.robust, robust) << "batch " << batch;
    EXPECT_EQ(loader.state().batch, 0);
    // The limit stops inside a batch and counts only what it kept.
    method::EvalCounts part = method::evaluate_pgd(flat, loader, opt, 10);
    EXPECT_EQ(part.n, 10);
    EXPECT_EQ(loader.state().batch, 0) << "the loader is left at an epoch start";
  }
}

TEST(Evaluate, RandomStartDependsOnThePointsNotOnTheCall) {
  method::EvalOptions opt;
  RngKey a = method::eval_start_key(opt, 256), b = method::eval_start_key(opt, 256);
  EXPECT_EQ(a.sample, b.sample);
  EXPECT_EQ(a.step, b.step);
  EXPECT_NE(method::eval_start_key(opt, 0).sample, a.sample);
}
