// Finetuning math (advcl/finetune/finetune.h): the TRADES loss against its definition
// and finite differences, the TRADES attack, what each mode's step trains,
// and the evaluation history (advcl/run/finetune_results.h).
#include <gtest/gtest.h>

#include <cmath>

#include "advcl/finetune/finetune.h"
#include "advcl/run/finetune_results.h"
#include "engine/ops.h"
#include "tests/gradcheck.h"
#include "tests/tiny_data.h"

using namespace advcl;

namespace {

Tensor labels_of(std::vector<int64_t> v) {
  int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_vector<int64_t>(v, {n});
}

// A ResNet-18 of width 2 on 1-channel 8x8 images with a 3-class classifier, float64.
std::unique_ptr<method::FinetuneModel> tiny_model(uint64_t seed = 3) {
  nn::ResNetOptions o = test::tiny_encoder();
  o.seed = seed;
  auto m = std::make_unique<method::FinetuneModel>(std::make_unique<nn::ResNet18>(o), 3, seed);
  m->to(DType::Float64);
  return m;
}

std::map<std::string, std::vector<double>> snapshot(const nn::Module& m) {
  std::map<std::string, std::vector<double>> s;
  for (const nn::NamedTensor& t : m.state_dict()) s[t.name] = t.tensor.to(DType::Float64).to_vector<double>();
  return s;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

TEST(Trades, LossValueMatchesTheDefinition) {
  const int64_t B = 5, C = 4;
  Tensor lc = advcl::testing::random_tensor({B, C}, 1, -2, 2), la = advcl::testing::random_tensor({B, C}, 2, -2, 2);
  std::vector<int64_t> y{0, 3, 1, 1, 2};
  double beta = 6;
  method::TradesLoss l = method::trades_loss(lc, la, labels_of(y), beta);
  std::vector<double> a = lc.to_vector<double>(), b = la.to_vector<double>();
  double ce = 0, kl = 0;
  for (int64_t i = 0; i < B; ++i) {
    double zc = 0, za = 0;
    for (int64_t c = 0; c < C; ++c) {
      zc += std::exp(a[i * C + c]);
      za += std::exp(b[i * C + c]);
    }
    ce += std::log(zc) - a[i * C + y[i]];
    for (int64_t c = 0; c < C; ++c) {
      double lpc = a[i * C + c] - std::log(zc), lpa = b[i * C + c] - std::log(za);
      kl += std::exp(lpc) * (lpc - lpa);
    }
  }
  EXPECT_NEAR(l.natural.item(), ce / B, 1e-12);
  EXPECT_NEAR(l.robust.item(), kl / B, 1e-12);
  EXPECT_NEAR(l.total.item(), ce / B + beta * kl / B, 1e-12);
  // Identical logits: no KL.
  EXPECT_NEAR(method::trades_loss(lc, lc, labels_of(y), beta).robust.item(), 0.0, 1e-14);
}

TEST(Trades, GradientMatchesFiniteDifferencesOnBothLogits) {
  Tensor y = labels_of({2, 0, 1});
  advcl::testing::expect_gradients_match(
      [&](const std::vector<Tensor>& in) { return method::trades_loss(in[0], in[1], y, 6.0).total; },
      {advcl::testing::random_tensor({3, 4}, 3, -2, 2), advcl::testing::random_tensor({3, 4}, 4, -2, 2)}, 1e-6);
}

TEST(Trades, GradientOfATinyModelFlowsThroughTheCleanSide) {
  // Linear model W [C, D]; the loss as a function of W, clean and adversarial inputs fixed.
  Tensor x = advcl::testing::random_tensor({4, 5}, 5, 0, 1), xa = advcl::testing::random_tensor({4, 5}, 6, 0, 1);
  Tensor y = labels_of({0, 1, 2, 1});
  auto loss = [&](const Tensor& w, bool detach_clean) {
    Tensor lc = ops::linear(x, w), la = ops::linear(xa, w);
    // detach_clean: p_clean treated as a constant (NOT what TRADES does).
    Tensor target = detach_clean ? ops::softmax(lc).detach() : ops::softmax(lc);
    Tensor kl = ops::div(ops::kl_div(ops::log_softmax(la), target, ops::KLReduction::Sum), 4.0);
    return detach_clean ? ops::add(ops::cross_entropy(lc, y), ops::mul(kl, 6.0))
                        : method::trades_loss(lc, la, y, 6.0).total;
  };
  Tensor w = advcl::testing::random_tensor({3, 5}, 7, -1, 1);
  advcl::testing::expect_gradients_match([&](const std::vector<Tensor>& in) { return loss(in[0], false); }, {w}, 1e-6);
  Tensor w1 = w.clone().set_requires_grad(true), w2 = w.clone().set_requires_grad(true);
  std::vector<double> g_full = grad(loss(w1, false), {w1})[0].to_vector<double>();
  std::vector<double> g_half = grad(loss(w2, true), {w2})[0].to_vector<double>();
  double diff = 0;
  for (size_t i = 0; i < g_full.size(); ++i) diff = std::max(diff, std::fabs(g_full[i] - g_half[i]));
  EXPECT_GT(diff, 1e-4) << "the p_clean side must contribute to the gradient";
}

TEST(Trades, AttackStaysInTheBallAndRaisesTheKl) {
  Tensor w = advcl::testing::random_tensor({3, 6}, 8, -3, 3);
  method::LogitsFn f = [&](const Tensor& x) { return ops::linear(x, w); };
  Tensor x = advcl::testing::random_tensor({10, 6}, 9, 0.05, 0.95);
  method::FinetuneStepOptions opt;  // eps 8/255, step 2/255, 10 steps
  RngKey key{0, static_cast<uint32_t>(RngPurpose::AttackStart), 0, 0};
  Tensor adv = method::trades_attack(f, x, opt, key);
  std::vector<double> a = adv.to_vector<double>(), c = x.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_LE(std::fabs(a[i] - c[i]), opt.epsilon + 1e-12);
    EXPECT_GE(a[i], 0.0);
    EXPECT_LE(a[i], 1.0);
  }
  auto kl = [&](const Tensor& z) {
    return ops::kl_div(ops::log_softmax(f(z)), ops::softmax(f(x)), ops::KLReduction::Sum).item();
  };
  method::PgdOptions start;
  start.start = method::PgdOptions::Start::Normal;
  EXPECT_GT(kl(adv), 100 * kl(method::pgd_start(x, start, key)));
  // Zero steps: the start, x + 0.001 N(0, 1).
  opt.attack_steps = 0;
  std::vector<double> s = method::trades_attack(f, x, opt, key).to_vector<double>();
  double dev = 0;
  for (size_t i = 0; i < s.size(); ++i) dev = std::max(dev, std::fabs(s[i] - c[i]));
  EXPECT_GT(dev, 0.0);
  EXPECT_LT(dev, 0.01);
}

TEST(FinetuneStep, LinearModesTrainOnlyTheClassifier) {
  for (method::FinetuneMode mode : {method::FinetuneMode::Slf, method::FinetuneMode::Alf}) {
    auto model = tiny_model();
    nn::Sgd sgd(model->classifier.named_parameters(), {0.1, 0.9, 2e-4});
    auto before = snapshot(*model);
    method::FinetuneStepOptions opt;
    opt.mode = mode;
    opt.attack_steps = 2;
    Tensor x = advcl::testing::random_tensor({6, 1, 8, 8}, 10, 0, 1);
    auto values = method::finetune_step(*model, sgd, x, labels_of({0, 1, 2, 0, 1, 2}), opt, RngKey{});
    EXPECT_TRUE(values.count("loss") && values.count("acc"));
    EXPECT_FALSE(model->is_training());
    for (auto& [name, v] : snapshot(*model)) {
      bool classifier = starts_with(name, "fc.");
      EXPECT_EQ(v != before[name], classifier) << method::finetune_mode_name(mode) << " " << name;
    }
  }
}

TEST(FinetuneStep, AffIsOneSgdStepOnTheTradesLossOfATrainModeModel) {
  auto model = tiny_model(), ref = tiny_model();
  nn::Sgd sgd(model->named_parameters(), {1.0, 0.0, 0.0});  // p -= grad
  method::FinetuneStepOptions opt;
  opt.mode = method::FinetuneMode::Aff;
  opt.attack_steps = 3;
  Tensor x = advcl::testing::random_tensor({6, 1, 8, 8}, 11, 0, 1);
  Tensor y = labels_of({0, 1, 2, 2, 1, 0});
  RngKey key{5, static_cast<uint32_t>(RngPurpose::AttackStart), 1, 0};
  int64_t tracked = model->encoder().bn1.set(0).num_batches_tracked.data<int64_t>()[0];
  method::finetune_step(*model, sgd, x, y, opt, key);

  // The same step by hand on an identical model: attack in eval mode, loss in train mode.
  ref->eval();
  Tensor adv = method::trades_attack([&](const Tensor& z) { return ref->logits(z); }, x, opt, key);
  ref->train();
  Tensor loss = method::trades_loss(ref->logits(x), ref->logits(adv), y, opt.beta).total;
  nn::StateDict params = ref->named_parameters();
  std::vector<Tensor> ps;
  for (auto& p : params) ps.push_back(p.tensor);
  std::vector<Tensor> g = grad(loss, ps);
  auto after = snapshot(*model);
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<double> p0 = params[i].tensor.to_vector<double>(), gi = g[i].to_vector<double>();
    const std::vector<double>& p1 = after[params[i].name];
    for (size_t k = 0; k < p0.size(); ++k) ASSERT_NEAR(p1[k], p0[k] - gi[k], 1e-10) << params[i].name << " " << k;
  }
  // Three train-mode forwards per step, as TRADES (clean, adversarial, clean again).
  EXPECT_EQ(model->encoder().bn1.set(0).num_batches_tracked.data<int64_t>()[0], tracked + 3);
  EXPECT_FALSE(model->is_training());
}

TEST(FinetuneModel, StateDictIsTheEncoderAndFc) {
  auto model = tiny_model();
  std::vector<std::string> names;
  for (auto& t : model->state_dict()) names.push_back(t.name);
  EXPECT_EQ(names.front(), "conv1.weight");
  EXPECT_EQ(names[names.size() - 2], "fc.weight");
  EXPECT_EQ(names.back(), "fc.bias");
  for (const std::string& n : names) EXPECT_EQ(n.find("bn_list"), std::string::npos) << n;
  EXPECT_EQ(model->logits(advcl::testing::random_tensor({2, 1, 8, 8}, 12, 0, 1)).shape(), (Shape{2, 3}));
}

TEST(Finetune, ModeNames) {
  EXPECT_EQ(method::parse_finetune_mode("SLF"), method::FinetuneMode::Slf);
  EXPECT_EQ(method::parse_finetune_mode("alf"), method::FinetuneMode::Alf);
  EXPECT_EQ(method::parse_finetune_mode("aff"), method::FinetuneMode::Aff);
  try {
    method::parse_finetune_mode("trades");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--mode"), std::string::npos) << e.what();
  }
}

TEST(FinetuneResults, BestIsTheFirstHighestRaAndLastIsTheLastEpoch) {
  method::FinetuneHistory h;
  EXPECT_EQ(h.best(), nullptr);
  h.add({2, 100, 0.80, 0.45, 1.5});
  h.add({1, 100, 0.70, 0.40, 1.5});
  h.add({3, 100, 0.82, 0.45, 1.5});  // ties epoch 2: the earlier stays best
  h.add({4, 100, 0.83, 0.41, 1.5});
  ASSERT_EQ(h.evals().size(), 4u);
  EXPECT_EQ(h.evals()[0].epoch, 1);
  EXPECT_EQ(h.best()->epoch, 2);
  EXPECT_EQ(h.last()->epoch, 4);
  h.add({4, 100, 0.84, 0.50, 2.0});  // an epoch redone after resume replaces its entry
  EXPECT_EQ(h.evals().size(), 4u);
  EXPECT_EQ(h.best()->epoch, 4);

  method::FinetuneHistory back = method::FinetuneHistory::decode(h.encode(), "test");
  ASSERT_EQ(back.evals().size(), h.evals().size());
  for (size_t i = 0; i < h.evals().size(); ++i) {
    EXPECT_EQ(back.evals()[i].epoch, h.evals()[i].epoch);
    EXPECT_EQ(back.evals()[i].n, h.evals()[i].n);
    EXPECT_EQ(back.evals()[i].sa, h.evals()[i].sa);  // every digit kept
    EXPECT_EQ(back.evals()[i].ra, h.evals()[i].ra);
  }
  EXPECT_THROW(method::FinetuneHistory::decode("1,100,0.5", "ckpt.safetensors"), Error);

  method::FinetuneReport r;
  r.mode = "slf";
  r.epochs = r.epochs_done = 4;
  std::string json = method::results_json(h, r);
  EXPECT_NE(json.find("\"best\": {\"epoch\": 4, \"sa\": 84, \"ra\": 50"), std::string::npos) << json;
  EXPECT_NE(json.find("\"last\": {\"epoch\": 4"), std::string::npos) << json;
  EXPECT_NE(method::results_table(h, r).find("<- best RA  <- last"), std::string::npos);
}
