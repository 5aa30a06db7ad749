// The training step stays on the device: the steps of every stage and an
// evaluation batch make no host round trip (engine/counters.h), which on a
// GPU would each stall the step; the epoch loop reads the step's values once
// per logged step and its sums once per epoch. Counted on the CPU, where the
// same calls would synchronise on a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "advcl/attacks/evaluate.h"
#include "advcl/finetune/finetune.h"
#include "advcl/pretrain/advcl_step.h"
#include "advcl/pretrain/losses.h"
#include "advcl/pretrain/simclr_step.h"
#include "advcl/run/train_loop.h"
#include "engine/counters.h"
#include "engine/ops.h"
#include "nn/layers.h"
#include "tests/datasets/dataset_test_util.h"
#include "tests/tiny_data.h"

using namespace advcl;

namespace {

// Host round trips made while `f` runs.
template <class F>
int64_t syncs_during(F&& f) {
  int64_t before = counters::host_syncs();
  f();
  return counters::host_syncs() - before;
}

Tensor images(int64_t n, int64_t channels, int64_t size, uint32_t seed) {
  return ops::rand_uniform({n, channels, size, size}, RngKey{seed, 1, 0, 0}, 0, 1);
}

Tensor labels(int64_t n, int64_t classes, uint32_t seed) { return ops::rand_int({n}, RngKey{seed, 2, 0, 0}, 0, classes); }

}  // namespace

TEST(HostSync, EveryHostReadCounts) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3}, {3});
  EXPECT_EQ(syncs_during([&] { x.to_vector<float>(); }), 1);
  EXPECT_EQ(syncs_during([&] { ops::sum(x).item(); }), 1);
  // On a GPU a copy the host waits for; here the no-op that would be one.
  EXPECT_EQ(syncs_during([&] { x.to(Device::cpu()); }), 1);
  // Kernels reading CPU data, and ops, do not count.
  EXPECT_EQ(syncs_during([&] {
              ops::mul(ops::exp(x), 2.0);
              (void)x.data<float>()[0];
              x.clone();
              x.to(DType::Float64);
            }),
            0);
  // The loader's upload does not make the host wait.
  EXPECT_EQ(syncs_during([&] { EXPECT_TRUE(data::upload(x, Device::cpu()).same(x)); }), 0);
}

TEST(HostSync, LossesStayOnTheDevice) {
  Tensor logits = ops::rand_normal({6, 4}, RngKey{1, 3, 0, 0}, 0, 1, DType::Float64).set_requires_grad(true);
  Tensor y = Tensor::from_vector<int64_t>({0, 3, -1, 2, 1, -1}, {6});
  // Forward (labels not copied to the host) and backward (gradient not read).
  EXPECT_EQ(syncs_during([&] { backward(ops::cross_entropy(logits, y, ops::Reduction::Mean, -1)); }), 0);
  EXPECT_EQ(syncs_during([&] {
              Tensor p = ops::softmax(logits.detach());
              backward(ops::kl_div(ops::log_softmax(logits), p, ops::KLReduction::BatchMean));
            }),
            0);
  std::vector<Tensor> views;
  for (uint32_t v = 0; v < 3; ++v)
    views.push_back(ops::l2_normalize(ops::rand_normal({4, 5}, RngKey{2, v, 0, 0}, 0, 1, DType::Float64)));
  // The masks are made on the features' device, not uploaded.
  EXPECT_EQ(syncs_during([&] { method::supcon_loss(views); }), 0);
}

TEST(HostSync, CrossEntropyMeanOverLabelsCountedOnTheDevice) {
  // 1 / (labels not ignored) is computed on the device: check it against the
  // per-row losses, including a batch with every label ignored (loss 0).
  Tensor logits = ops::rand_normal({5, 3}, RngKey{4, 3, 0, 0}, 0, 1, DType::Float64);
  Tensor y = Tensor::from_vector<int64_t>({2, -1, 0, -1, 1}, {5});
  double sum = ops::cross_entropy(logits, y, ops::Reduction::Sum, -1).item();
  EXPECT_DOUBLE_EQ(ops::cross_entropy(logits, y, ops::Reduction::Mean, -1).item(), sum / 3);
  Tensor none = Tensor::from_vector<int64_t>({-1, -1, -1, -1, -1}, {5});
  EXPECT_EQ(ops::cross_entropy(logits, none, ops::Reduction::Mean, -1).item(), 0.0);
  // On the CPU an out-of-range label is still an error (the GPU trusts the loader's check).
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::from_vector<int64_t>({0, 1, 2, 3, 0}, {5})), Error);
}

TEST(HostSync, AdvclStepMakesNoHostRoundTrip) {
  method::ContrastiveModelOptions mo;
  mo.backbone.width = 2;
  mo.pseudo_classes = {2, 3};
  method::ContrastiveModel model(mo);
  nn::Sgd sgd(model.named_parameters(), {0.1, 0.9, 1e-4});
  method::AdvclStepOptions opt;
  opt.iterations = 2;
  opt.radius = 2;
  method::AdvclBatch b{images(4, 3, 8, 1), images(4, 3, 8, 2), images(4, 3, 8, 3), {labels(4, 2, 4), labels(4, 3, 5)}};
  method::AdvclStepResult r;
  EXPECT_EQ(syncs_during([&] {
              auto starts = method::advcl_attack_starts(b.x_org, opt, RngKey{1, 0, 0, 0});
              r = method::advcl_step(model, sgd, b, starts, opt);
            }),
            0);
  EXPECT_EQ(r.loss.numel(), 1);
  EXPECT_TRUE(std::isfinite(r.loss.item()));
}

TEST(HostSync, SimclrStepMakesNoHostRoundTrip) {
  method::ContrastiveModelOptions mo;
  mo.backbone.width = 2;
  mo.backbone.num_bn_sets = 1;
  mo.pseudo_classes.clear();
  method::ContrastiveModel model(mo);
  nn::Sgd sgd(model.named_parameters(), {0.1, 0.9, 1e-4});
  method::SimclrStepOptions opt;
  Tensor loss;
  EXPECT_EQ(syncs_during([&] { loss = method::simclr_step(model, sgd, images(4, 3, 8, 6), images(4, 3, 8, 7), opt); }),
            0);
  EXPECT_TRUE(std::isfinite(loss.item()));
}

TEST(HostSync, FinetuneStepsMakeNoHostRoundTrip) {
  for (method::FinetuneMode mode : {method::FinetuneMode::Slf, method::FinetuneMode::Alf, method::FinetuneMode::Aff}) {
    SCOPED_TRACE(method::finetune_mode_name(mode));
    method::FinetuneModel model(std::make_unique<nn::ResNet18>(test::tiny_encoder()), 3, 7);
    nn::Sgd sgd(mode == method::FinetuneMode::Aff ? model.named_parameters() : model.classifier.named_parameters(),
                {0.1, 0.9, 2e-4});
    method::FinetuneStepOptions opt;
    opt.mode = mode;
    opt.attack_steps = 2;
    Tensor x = images(6, 1, 8, 8), y = labels(6, 3, 9);
    method::StepValues values;
    EXPECT_EQ(syncs_during([&] { values = method::finetune_step(model, sgd, x, y, opt, RngKey{}); }), 0);
    // The values come back in one read.
    std::map<std::string, double> host;
    EXPECT_EQ(syncs_during([&] { host = method::read_values(values); }), 1);
    EXPECT_EQ(host.size(), mode == method::FinetuneMode::Aff ? 4u : 2u);
    EXPECT_GE(host.at("acc"), 0.0);
    EXPECT_LE(host.at("acc"), 1.0);
    EXPECT_TRUE(std::isfinite(host.at("loss")));
  }
}

TEST(HostSync, Pgd20EvaluationBatchCountsOnTheDevice) {
  method::FinetuneModel model(std::make_unique<nn::ResNet18>(test::tiny_encoder()), 3, 7);
  model.eval();
  method::LogitsFn logits = [&](const Tensor& x) { return model.logits(x); };
  method::EvalOptions opt;  // PGD-20
  Tensor x = images(5, 1, 8, 10), y = labels(5, 3, 11);
  method::DeviceCounts d;
  EXPECT_EQ(syncs_during([&] { d = method::count_batch(logits, x, y, opt, 0); }), 0);
  // The counts are those of the host-side definition.
  std::vector<int64_t> want = y.to_vector<int64_t>();
  auto count = [&](const Tensor& l) {
    std::vector<float> v = l.to_vector<float>();
    int64_t c = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      size_t best = 0;
      for (size_t k = 1; k < 3; ++k)
        if (v[i * 3 + k] > v[i * 3 + best]) best = k;
      c += static_cast<int64_t>(best) == want[i];
    }
    return c;
  };
  EXPECT_EQ(d.clean.item(), static_cast<double>(count(model.logits(x))));
  method::EvalCounts c = method::evaluate_batch(logits, x, y, opt, 0);
  EXPECT_EQ(static_cast<double>(c.clean), d.clean.item());
  EXPECT_EQ(static_cast<double>(c.robust), d.robust.item());
  EXPECT_LE(c.robust, c.clean);

  // A whole pass over a loader: one read, at the end.
  data::LoaderOptions lo;
  lo.batch_size = 4;
  lo.shuffle = false;
  lo.workers = 0;
  data::BatchLoader loader(test::tiny_images(10, 3, 12), std::make_shared<data::ToFloat>(), lo);
  method::EvalCounts total;
  EXPECT_EQ(syncs_during([&] { total = method::evaluate_pgd(logits, loader, opt); }), 1);
  EXPECT_EQ(total.n, 10);
}

namespace {

// A linear model trained by run_training on 24 tiny images in batches of 6
// (4 steps per epoch), logging every 2nd step; returns the host round trips
// of each step and of the gap after each step.
struct LoopTrace {
  std::vector<int64_t> in_step, after_step;
};

LoopTrace trace_loop(const std::string& out) {
  nn::Linear model(64, 3);
  model.init_parameters(5);
  nn::Sgd sgd(model.named_parameters(), {0.1, 0.9, 1e-4});
  data::LoaderOptions lo;
  lo.batch_size = 6;
  lo.seed = 1;
  lo.workers = 0;
  data::BatchLoader loader(test::tiny_images(24, 3, 4), std::make_shared<data::ToFloat>(), lo);
  cli::RunDir dir(out);
  cli::LoopOptions opt;
  opt.stage = "test";
  opt.epochs = 2;
  opt.log_every = 2;
  LoopTrace t;
  int64_t left = counters::host_syncs();
  auto step = [&](const data::Batch& b, int64_t) {
    int64_t enter = counters::host_syncs();
    if (!t.in_step.empty()) t.after_step.push_back(enter - left);
    sgd.zero_grad();
    Tensor loss = ops::cross_entropy(model.forward(ops::flatten(b.images())), b.labels);
    backward(loss);
    sgd.step();
    method::StepValues v{{"loss", loss.detach()}, {"twice", ops::mul(loss.detach(), 2.0)}};
    left = counters::host_syncs();
    t.in_step.push_back(left - enter);
    return v;
  };
  cli::run_training(dir, model, sgd, loader, opt, [](int64_t, int64_t, int64_t) { return 0.1; }, step, {});
  return t;
}

}  // namespace

TEST(HostSync, TrainingLoopReadsOnlyOnLoggedSteps) {
  data::testing::TempDir tmp;
  LoopTrace t = trace_loop(tmp / "run");
  ASSERT_EQ(t.in_step.size(), 8u);
  // The linear step, cross-entropy, backward and the SGD update: no read.
  for (int64_t n : t.in_step) EXPECT_EQ(n, 0);
  // After steps 1 and 3 of an epoch nothing is read; after step 2 (logged)
  // its values, all at once. (After step 4 the epoch ends: its sums are
  // read, and a checkpoint written.)
  EXPECT_EQ(t.after_step[0], 0);
  EXPECT_EQ(t.after_step[1], 1);
  EXPECT_EQ(t.after_step[2], 0);
  EXPECT_EQ(t.after_step[4], 0);
  EXPECT_EQ(t.after_step[5], 1);
  EXPECT_EQ(t.after_step[6], 0);

  // metrics.jsonl: host_syncs and device_allocs on every logged step; the
  // first epoch's logged steps made one round trip each (their read).
  std::ifstream in(tmp / "run/metrics.jsonl");
  std::string line;
  std::vector<std::string> logged;
  while (std::getline(in, line))
    if (line.find("\"step\"") != std::string::npos) logged.push_back(line);
  ASSERT_EQ(logged.size(), 4u);
  for (const std::string& l : logged) {
    EXPECT_NE(l.find("\"device_allocs\": 0"), std::string::npos) << l;
    EXPECT_NE(l.find("\"host_syncs\": "), std::string::npos) << l;
    EXPECT_NE(l.find("\"twice\": "), std::string::npos) << l;
  }
  EXPECT_NE(logged[0].find("\"host_syncs\": 1,"), std::string::npos) << logged[0];
  EXPECT_NE(logged[1].find("\"host_syncs\": 1,"), std::string::npos) << logged[1];
}
