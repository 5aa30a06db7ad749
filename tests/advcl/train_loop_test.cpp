// The shared epoch loop: a stop signal ends the run cleanly after the step in
// progress, with a checkpoint from which the run resumes to the same result
// as an uninterrupted one; a non-finite loss stops it naming the term.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>

#include "advcl/run/train_loop.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "nn/layers.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl;

namespace {

std::shared_ptr<const data::ImageDataset> tiny_dataset() {
  auto ds = std::make_shared<data::ImageDataset>();
  ds->name = "tiny";
  ds->n = 24;
  ds->channels = 1;
  ds->height = ds->width = 2;
  ds->num_classes = 2;
  ds->class_names = {"a", "b"};
  for (int64_t i = 0; i < ds->n; ++i) {
    for (int j = 0; j < 4; ++j) ds->images.push_back(static_cast<uint8_t>((i * 37 + j * 11) % 256));
    ds->labels.push_back(i % 2);
  }
  return ds;
}

// Trains a linear model on the flattened pixels; raises `signal_at_step` (if >= 0) during that step.
std::map<std::string, Tensor> train(const std::string& out, int epochs, int signal_at_step, bool* interrupted) {
  nn::Linear model(4, 2);
  model.init_parameters(5);
  nn::Sgd sgd(model.named_parameters(), {0.1, 0.9, 1e-4});
  data::LoaderOptions lo;
  lo.batch_size = 8;
  lo.seed = 1;
  lo.workers = 0;
  data::BatchLoader loader(tiny_dataset(), std::make_shared<data::ToFloat>(), lo);
  cli::RunDir dir(out);
  cli::LoopOptions opt;
  opt.stage = "test";
  opt.epochs = epochs;
  opt.log_every = 0;
  cli::ResumePoint from = cli::resume_if_any(dir, model, sgd, "test", true);
  auto step = [&](const data::Batch& b, int64_t global_step) {
    if (global_step == signal_at_step) std::raise(SIGTERM);
    sgd.zero_grad();
    Tensor loss = ops::cross_entropy(model.forward(ops::flatten(b.images())), b.labels);
    backward(loss);
    sgd.step();
    return method::StepValues{{"loss", loss.detach()}};
  };
  *interrupted = false;
  try {
    cli::run_training(dir, model, sgd, loader, opt, [](int64_t, int64_t, int64_t) { return 0.1; }, step, from);
  } catch (const cli::Interrupted& e) {
    *interrupted = true;
    EXPECT_NE(std::string(e.what()).find("rerun the same command"), std::string::npos) << e.what();
  }
  std::map<std::string, Tensor> state;
  for (const nn::NamedTensor& t : model.state_dict()) state[t.name] = t.tensor.clone();
  return state;
}

// `field` of the epoch-summary line of `epoch` in a metrics.jsonl (-1 if none).
double epoch_mean(const std::string& metrics, int64_t epoch, const std::string& field) {
  std::ifstream in(metrics);
  double found = -1;
  for (std::string line; std::getline(in, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.value("epoch", int64_t{0}) == epoch && j.contains(field)) found = j[field].get<double>();
  }
  return found;
}

}  // namespace

TEST(TrainLoop, StopSignalSavesAndResumesExactly) {
  data::testing::TempDir tmp;
  bool interrupted = false;
  auto straight = train(tmp / "straight", 2, -1, &interrupted);
  EXPECT_FALSE(interrupted);
  // SIGTERM during step 4 of 6 (the middle of epoch 2): the step finishes, a
  // checkpoint is written, the run stops; rerunning finishes it.
  train(tmp / "stopped", 2, 4, &interrupted);
  EXPECT_TRUE(interrupted);
  SafetensorsFile ck = load_safetensors(tmp / "stopped/last.safetensors");
  EXPECT_EQ(ck.metadata.at("loader_epoch"), "1");
  EXPECT_EQ(ck.metadata.at("loader_batch"), "2");
  auto resumed = train(tmp / "stopped", 2, -1, &interrupted);
  EXPECT_FALSE(interrupted);
  for (auto& [name, t] : straight) {
    std::vector<float> a = t.to_vector<float>(), b = resumed.at(name).to_vector<float>();
    EXPECT_EQ(a, b) << name;
  }
  // The checkpoint inside epoch 2 carried that epoch's sums so far: the
  // resumed run's epoch-2 mean covers all 3 steps, as the straight run's does.
  EXPECT_EQ(ck.metadata.at("loop.epoch_steps"), "2");
  double straight_mean = epoch_mean(tmp / "straight/metrics.jsonl", 2, "mean_loss");
  EXPECT_GT(straight_mean, 0);
  EXPECT_EQ(epoch_mean(tmp / "stopped/metrics.jsonl", 2, "mean_loss"), straight_mean);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
}

TEST(TrainLoop, NonFiniteLossStopsNamingTheTerm) {
  data::testing::TempDir tmp;
  nn::Linear model(4, 2);
  nn::Sgd sgd(model.named_parameters(), {0.1, 0.9, 0});
  data::LoaderOptions lo;
  lo.batch_size = 8;
  lo.workers = 0;
  data::BatchLoader loader(tiny_dataset(), std::make_shared<data::ToFloat>(), lo);
  cli::RunDir dir(tmp / "nan");
  cli::LoopOptions opt;
  opt.stage = "test";
  opt.log_every = 1;  // every step's values are read
  auto step = [](const data::Batch&, int64_t) {
    return method::StepValues{{"loss", Tensor::scalar(1.0)}, {"ce", Tensor::scalar(std::nan(""))}};
  };
  try {
    cli::run_training(dir, model, sgd, loader, opt, [](int64_t, int64_t, int64_t) { return 0.1; }, step, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("ce became nan"), std::string::npos) << m;
    EXPECT_NE(m.find("step 1"), std::string::npos) << m;
  }
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
}

TEST(TrainLoop, NonFiniteValueOfAStepNotLoggedStopsBeforeTheNextCheckpoint) {
  // Only logged steps' values are read; a NaN of another step poisons the
  // epoch's sums on the device, which are checked before every checkpoint.
  data::testing::TempDir tmp;
  nn::Linear model(4, 2);
  nn::Sgd sgd(model.named_parameters(), {0.1, 0.9, 0});
  data::LoaderOptions lo;
  lo.batch_size = 8;
  lo.workers = 0;
  data::BatchLoader loader(tiny_dataset(), std::make_shared<data::ToFloat>(), lo);
  cli::RunDir dir(tmp / "nan");
  cli::LoopOptions opt;
  opt.stage = "test";
  opt.log_every = 0;   // no step logs (the epoch's last one still prints)
  opt.save_steps = 2;  // a checkpoint after step 2
  auto step = [](const data::Batch&, int64_t global_step) {
    return method::StepValues{{"loss", Tensor::scalar(global_step == 0 ? std::nan("") : 1.0)}};
  };
  try {
    cli::run_training(dir, model, sgd, loader, opt, [](int64_t, int64_t, int64_t) { return 0.1; }, step, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("loss became nan at epoch 1 between step 1 and step 2"), std::string::npos) << m;
    EXPECT_NE(m.find("no checkpoint was written"), std::string::npos) << m;
  }
  EXPECT_FALSE(dir.has_checkpoint());  // the poisoned model was never saved
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
}
