// The shared option checks (advcl/cli/option_checks.h) and the resume checks
// (advcl/run/resume_check.h): each bad value is refused naming the option and
// the value; a resumed run must have the options of the run it continues.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "advcl/cli/common_options.h"
#include "advcl/cli/option_checks.h"
#include "advcl/run/resume_check.h"
#include "engine/common.h"
#include "tests/datasets/dataset_test_util.h"

using namespace advcl;
using namespace advcl::cli;

namespace {

using data::testing::error_of;

// Parses `args` with the options a training command shares, then checks them.
std::string check(std::vector<std::string> args) {
  CLI::App app;
  CommonOptions common;
  add_common_options(app, common);
  int64_t epochs = 1, width = 64;
  double lr = 0.5, momentum = 0.9, epsilon = 8;
  bool resume = false, no_resume = false;
  std::vector<int64_t> milestones{15, 20};
  app.add_option("--epoch", epochs);
  app.add_option("--width", width);
  app.add_option("--learning_rate", lr);
  app.add_option("--momentum", momentum);
  app.add_option("--epsilon", epsilon);
  app.add_option("--milestones", milestones)->delimiter(',');
  app.add_flag("--resume", resume);
  app.add_flag("--no-resume", no_resume);
  args.insert(args.begin(), {"--data", "d", "--out", "o"});
  std::reverse(args.begin(), args.end());  // CLI11 takes argv reversed
  app.parse(args);
  return error_of([&] { check_options(app); });
}

}  // namespace

TEST(OptionChecks, EachBadValueIsRefusedNamingTheOptionAndValue) {
  EXPECT_EQ(check({}), "");
  EXPECT_EQ(check({"--epoch", "3", "--momentum", "0", "--threads", "0", "--learning_rate", "1e-3"}), "");
  EXPECT_EQ(check({"--epoch", "0"}), "--epoch must be at least 1, got 0");
  EXPECT_EQ(check({"--epoch", "-3"}), "--epoch must be at least 1, got -3");
  EXPECT_EQ(check({"--learning_rate", "nan"}), "--learning_rate must be a finite number, got nan");
  EXPECT_EQ(check({"--learning_rate", "inf"}), "--learning_rate must be a finite number, got inf");
  EXPECT_EQ(check({"--learning_rate", "0"}), "--learning_rate must be positive, got 0");
  EXPECT_EQ(check({"--epsilon", "-8"}), "--epsilon must be >= 0, got -8");
  EXPECT_EQ(check({"--width", "0"}), "--width must be at least 1, got 0");
  EXPECT_EQ(check({"--momentum", "1.5"}), "--momentum must be in [0, 1), got 1.5");
  EXPECT_EQ(check({"--momentum", "1"}), "--momentum must be in [0, 1), got 1");
  EXPECT_EQ(check({"--threads", "-2"}), "--threads must be >= 0, got -2");
  EXPECT_EQ(check({"--size", "0"}), "--size must be at least 1, got 0");
  EXPECT_EQ(check({"--milestones", "15,-1"}), "--milestones must be >= 0, got -1");
  EXPECT_NE(check({"--resume", "--no-resume"}).find("--resume and --no-resume exclude each other"), std::string::npos);
}

TEST(OptionChecks, RulesAreByName) {
  OptionRule r;
  ASSERT_TRUE(option_rule("--beta", &r));
  EXPECT_EQ(error_of([&] { check_option_value("--beta", r, "-6"); }), "--beta must be >= 0, got -6");
  ASSERT_TRUE(option_rule("--gamma", &r));
  EXPECT_EQ(error_of([&] { check_option_value("--gamma", r, "-1"); }), "--gamma must be >= 0, got -1");
  ASSERT_TRUE(option_rule("--save-steps", &r));
  EXPECT_EQ(error_of([&] { check_option_value("--save-steps", r, "-1"); }), "--save-steps must be >= 0, got -1");
  ASSERT_TRUE(option_rule("--stop-epoch", &r));
  EXPECT_EQ(error_of([&] { check_option_value("--stop-epoch", r, "-1"); }), "--stop-epoch must be >= 0, got -1");
  EXPECT_FALSE(option_rule("--data", &r));
}

TEST(ResumeCheck, StoredOptionsRoundTripAndDifferencesAreNamed) {
  CLI::App app;
  std::string labels = "a \"quoted\" \\ path";
  double lr = 0.5;
  int threads = 1;
  app.add_option("--labels", labels)->capture_default_str();
  app.add_option("--learning_rate", lr)->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  std::vector<std::string> none;
  app.parse(none);
  const std::map<std::string, std::string> stored = parse_options_json(options_json(app), "test");
  EXPECT_EQ(stored.at("labels"), labels);
  EXPECT_EQ(stored.at("learning_rate"), "0.5");
  std::map<std::string, std::string> now = stored;
  now["threads"] = "4";  // may change
  EXPECT_TRUE(option_differences("simclr", stored, now).empty());
  now["learning_rate"] = "0.1";
  now["labels"] = "other.pkl";
  EXPECT_EQ(option_differences("simclr", stored, now),
            (std::vector<std::string>{"--labels: 'a \"quoted\" \\ path' in the checkpoint, 'other.pkl' now",
                                      "--learning_rate: '0.5' in the checkpoint, '0.1' now"}));
  EXPECT_THROW(parse_options_json("{\"a\": 1}", "x"), Error);
}

TEST(ResumeCheck, WhatMayChange) {
  for (const char* o : {"threads", "workers", "log-every", "device", "precision", "stop-epoch", "save-steps"})
    EXPECT_TRUE(may_change_on_resume("pretrain", o)) << o;
  for (const char* o : {"learning_rate", "batch-size", "seed", "epsilon", "epoch", "labels", "data"})
    EXPECT_FALSE(may_change_on_resume("pretrain", o)) << o;
  EXPECT_TRUE(may_change_on_resume("finetune_slf", "epochs"));  // step decay at --milestones
  EXPECT_FALSE(may_change_on_resume("finetune_slf", "lr"));
}
