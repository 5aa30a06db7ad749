// `advcl finetune` and `advcl eval` end to end on tiny synthetic data (8x8
// IDX images, 4 classes told apart by brightness) and a tiny pretrained
// checkpoint: learning, resume, results.json, and eval of the result.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "advcl/cli/commands.h"
#include "advcl/cli/common_options.h"
#include "advcl/pretrain/advcl_step.h"
#include "advcl/pretrain/contrastive_model.h"
#include "advcl/run/finetune_results.h"
#include "advcl/run/json_out.h"
#include "advcl/run/model_io.h"
#include "advcl/run/run_dir.h"
#include "datasets/batch_loader.h"
#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/counters.h"
#include "engine/cpu_features.h"
#include "engine/safetensors.h"
#include "nn/batch_norm.h"
#include "nn/checkpoint.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl;
using data::testing::TempDir;
using data::testing::write_idx_split;

namespace {

// A pretraining-shaped checkpoint: ResNet-18 width 4, 1 channel, 3 BN sets,
// heads. Its weights are random, but the `pgd` set's running statistics are
// those of the training images (as pretraining leaves them), so that the
// frozen features are centred and a linear probe learns in a few steps.
void write_pretrained(const std::string& path, const std::string& data, const std::string& format, int64_t width = 4) {
  method::ContrastiveModelOptions mo;
  mo.backbone.width = width;
  mo.backbone.in_channels = 1;
  mo.backbone.seed = 7;
  mo.pseudo_classes = {2, 10};
  method::ContrastiveModel model(mo);
  cli::DataOptions d;
  d.data = data;
  d.format = format;
  d.limit = 128;
  if (format == "mnist") d.size = 8;
  data::LoaderOptions lo;
  lo.batch_size = 128;
  lo.workers = 0;
  data::BatchLoader loader(cli::load_data(d, "train"), std::make_shared<data::ToFloat>(), lo);
  data::Batch b;
  ASSERT_TRUE(loader.next(b));
  NoGradGuard no_grad;
  for (int i = 0; i < 30; ++i) model.features(b.images(), method::kAdvclPgd);  // train mode: running statistics move
  nn::CheckpointInfo info;
  info.metadata = cli::model_metadata(mo);
  info.metadata["stage"] = "pretrain";
  nn::save_checkpoint(path, model, nullptr, info);
}

int run(int (*cmd)(int, char**), std::vector<std::string> args) {
  args.insert(args.begin(), "advcl");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return cmd(static_cast<int>(argv.size()), argv.data());
}

// The common arguments of a quick run on the synthetic data.
std::vector<std::string> quick(const TempDir& t, const std::string& mode, const std::string& out, int epochs) {
  return {"--mode", mode, "--ckpt", t / "pre.safetensors", "--data", t / "data", "--dataset", "mnist", "--size", "8",
          "--out", t / out, "--epochs", std::to_string(epochs), "--batch-size", "16", "--eval-batch-size", "32",
          "--eval-steps", "3", "--attack-steps", "2", "--workers", "1", "--log-every", "0"};
}

class FinetuneCli : public ::testing::Test {
 protected:
  void SetUp() override {
    write_idx_split(t / "data", "train", 64);
    write_idx_split(t / "data", "t10k", 32);
    write_pretrained(t / "pre.safetensors", t / "data", "mnist");
  }
  method::FinetuneHistory history(const std::string& out) {
    SafetensorsFile f = load_safetensors(t / (out + "/last.safetensors"));
    return method::FinetuneHistory::decode(f.metadata.at("finetune.evals"), out);
  }
  std::string read(const std::string& rel) {
    std::ifstream in(t / rel);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  TempDir t;
};

}  // namespace

TEST_F(FinetuneCli, SlfLearnsAnEasySyntheticTask) {
  auto args = quick(t, "slf", "slf", 4);
  args.insert(args.end(), {"--lr", "0.1", "--eval-every", "2"});
  ASSERT_EQ(run(cli::cmd_finetune, args), 0);
  method::FinetuneHistory h = history("slf");
  ASSERT_EQ(h.evals().size(), 2u);  // epochs 2 and 4
  EXPECT_EQ(h.evals()[0].epoch, 2);
  EXPECT_EQ(h.last()->epoch, 4);
  EXPECT_EQ(h.last()->n, 32);
  EXPECT_GT(h.last()->sa, 0.5) << "chance is 0.25";
  EXPECT_LE(h.last()->ra, h.last()->sa);
  std::string json = read("slf/results.json");
  EXPECT_NE(json.find("\"best\": {\"epoch\": "), std::string::npos) << json;
  EXPECT_NE(json.find("\"last\": {\"epoch\": 4,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"mode\": \"slf\""), std::string::npos);
  EXPECT_NE(json.find("\"milestones\": [15, 20]"), std::string::npos) << json;
  // --precision auto on the CPU is fp32, and the checkpoint says so.
  EXPECT_EQ(load_safetensors(t / "slf/last.safetensors").metadata.at("precision"), "fp32");
  std::string metrics = read("slf/metrics.jsonl");
  EXPECT_NE(metrics.find("\"precision\": \"fp32\""), std::string::npos) << metrics;
}

TEST_F(FinetuneCli, ResumeGivesTheSameResultAsAnUninterruptedRun) {
  // AFF: every parameter and the BN statistics train, so any state the
  // checkpoint missed would show.
  ASSERT_EQ(run(cli::cmd_finetune, quick(t, "aff", "whole", 2)), 0);
  ASSERT_EQ(run(cli::cmd_finetune, quick(t, "aff", "split", 1)), 0);
  ASSERT_EQ(run(cli::cmd_finetune, quick(t, "aff", "split", 2)), 0);  // resumes after epoch 1
  SafetensorsFile a = load_safetensors(t / "whole/last.safetensors"), b = load_safetensors(t / "split/last.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (auto& [name, ta] : a.tensors) {
    ASSERT_TRUE(b.tensors.count(name)) << name;
    std::vector<double> va = ta.to(DType::Float64).to_vector<double>(),
                        vb = b.tensors.at(name).to(DType::Float64).to_vector<double>();
    EXPECT_EQ(va, vb) << name;
  }
  method::FinetuneHistory ha = history("whole"), hb = history("split");
  ASSERT_EQ(ha.evals().size(), 2u);
  ASSERT_EQ(hb.evals().size(), 2u) << "the resumed run must report epoch 1 too";
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(ha.evals()[i].sa, hb.evals()[i].sa);
    EXPECT_EQ(ha.evals()[i].ra, hb.evals()[i].ra);
  }
  // Resuming into a run of another mode is refused.
  EXPECT_THROW(run(cli::cmd_finetune, quick(t, "slf", "split", 2)), Error);
}

TEST_F(FinetuneCli, EvalOfTheFinetunedCheckpointMatchesTheLastEpoch) {
  ASSERT_EQ(run(cli::cmd_finetune, quick(t, "alf", "alf", 1)), 0);
  method::FinetuneHistory h = history("alf");
  ASSERT_EQ(run(cli::cmd_eval, {"--ckpt", t / "alf/last.safetensors", "--data", t / "data", "--dataset", "mnist",
                                "--size", "8", "--steps", "3", "--batch-size", "32", "--workers", "1", "--json",
                                t / "eval.json"}),
            0);
  const nlohmann::json json = nlohmann::json::parse(read("eval.json"));
  // Same points, same batches, same random starts: the same SA and RA.
  EXPECT_EQ(json.at("sa"), cli::json_number(100 * h.last()->sa)) << json;
  EXPECT_EQ(json.at("ra"), cli::json_number(100 * h.last()->ra)) << json;
  EXPECT_EQ(json.at("precision"), "fp32") << json;
}

// --attacks picks AutoAttack's stages: one name runs that attack alone, and
// the result names the stages it ran.
TEST_F(FinetuneCli, EvalRunsTheAutoAttackStagesAsked) {
  ASSERT_EQ(run(cli::cmd_finetune, quick(t, "slf", "slf", 1)), 0);
  std::vector<std::string> args{"--ckpt", t / "slf/last.safetensors", "--data", t / "data", "--dataset", "mnist",
                                "--size", "8", "--workers", "1", "--attack", "autoattack"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> a = args;
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  ASSERT_EQ(run(cli::cmd_eval, with({"--attacks", "apgd-ce", "--json", t / "aa.json"})), 0);
  EXPECT_NE(read("aa.json").find("\"AutoAttack (apgd-ce), eps 8/255\""), std::string::npos) << read("aa.json");
  EXPECT_NE(run(cli::cmd_eval, with({"--attacks", "apgd-ce,fgsm"})), 0);  // CLI11 names the bad value
  std::vector<std::string> pgd = args;
  pgd[pgd.size() - 1] = "pgd";
  pgd.insert(pgd.end(), {"--attacks", "square"});
  EXPECT_THROW(run(cli::cmd_eval, pgd), Error);
}

TEST_F(FinetuneCli, ClearErrors) {
  auto message = [&](int (*cmd)(int, char**), std::vector<std::string> args) {
    try {
      run(cmd, args);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  std::vector<std::string> eval_args{"--ckpt", t / "pre.safetensors", "--data", t / "data", "--dataset", "mnist",
                                     "--size", "8", "--workers", "1"};
  EXPECT_NE(message(cli::cmd_eval, eval_args).find("no classifier"), std::string::npos);
  auto bad_mode = quick(t, "xyz", "bad", 1);
  EXPECT_NE(message(cli::cmd_finetune, bad_mode).find("--mode"), std::string::npos);
  auto aa = eval_args;
  aa.insert(aa.end(), {"--attack", "fgsm"});
  EXPECT_NE(message(cli::cmd_eval, aa).find("--attack"), std::string::npos);
}

TEST(FinetuneFashionMnist, SlfOnASubsetBeatsChance) {
  const std::string data = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(data)) GTEST_SKIP() << data << " not present";
  TempDir t;
  write_pretrained(t / "pre.safetensors", data, "fashion-mnist");
  ASSERT_EQ(run(cli::cmd_finetune, {"--mode", "slf", "--ckpt", t / "pre.safetensors", "--data", data, "--limit",
                                    "512", "--test-limit", "128", "--epochs", "8", "--batch-size", "32", "--lr", "0.05",
                                    "--eval-steps", "1", "--eval-every", "2", "--workers", "1", "--log-every", "0",
                                    "--out", t / "ft"}),
            0);
  SafetensorsFile f = load_safetensors(t / "ft/last.safetensors");
  method::FinetuneHistory h = method::FinetuneHistory::decode(f.metadata.at("finetune.evals"), "ft");
  ASSERT_EQ(h.evals().size(), 4u);
  EXPECT_EQ(h.last()->n, 128);
  // A random width-4 encoder's features vary little (std ~0.2 around a mean
  // ~0.5), so a linear probe learns slowly: about 0.2 after 128 steps. The
  // synthetic test above is the sharp one; this runs the real reader path.
  EXPECT_GT(h.last()->sa, 0.15) << "10 classes: chance is 0.1";
}

// --precision bf16 (where the CPU has native bf16): finetune's steps and
// eval's attacks run their convolutions in bf16 (the bf16 plans are built and
// used), the choice is recorded in the checkpoint, metrics and results, the
// checkpoint stays float32, and autocast is off again after each command.
TEST_F(FinetuneCli, Bf16RunsTheStepsUnderAutocastAndRecordsIt) {
  if (!cpu::bf16_support().native()) GTEST_SKIP() << "no native bf16 here: " << cpu::bf16_support().missing();
  auto args = quick(t, "slf", "bf16", 1);
  args.insert(args.end(), {"--precision", "bf16"});
  const int64_t before = counters::get("conv2d.bf16");
  ASSERT_EQ(run(cli::cmd_finetune, args), 0);
  EXPECT_FALSE(autocast::enabled()) << "the command left autocast on";
  EXPECT_GT(counters::get("conv2d.bf16"), before) << "finetune ran no bf16 convolution";
  SafetensorsFile f = load_safetensors(t / "bf16/last.safetensors");
  EXPECT_EQ(f.metadata.at("precision"), "bf16");
  for (auto& [name, tensor] : f.tensors) {
    if (is_floating(tensor.dtype())) {
      EXPECT_EQ(tensor.dtype(), DType::Float32) << name;
    }
  }
  EXPECT_NE(read("bf16/metrics.jsonl").find("\"precision\": \"bf16\""), std::string::npos);
  const int64_t before_eval = counters::get("conv2d.bf16");
  ASSERT_EQ(run(cli::cmd_eval, {"--ckpt", t / "bf16/last.safetensors", "--data", t / "data", "--dataset", "mnist",
                                "--size", "8", "--steps", "2", "--batch-size", "32", "--workers", "1", "--precision",
                                "bf16", "--json", t / "eval.json"}),
            0);
  EXPECT_FALSE(autocast::enabled());
  EXPECT_GT(counters::get("conv2d.bf16"), before_eval) << "eval ran no bf16 convolution";
  EXPECT_NE(read("eval.json").find("\"precision\": \"bf16\""), std::string::npos) << read("eval.json");
}
