// options_json: what run.json, results.json and checkpoint metadata record
// of the command line.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "advcl/common_options.h"
#include "engine/common.h"

using namespace advcl;

TEST(OptionsJson, RecordsEveryValueOfAListOptionAndDefaults) {
  CLI::App app("t");
  std::vector<int64_t> milestones{15, 20};
  double lr = 0.01;
  bool flag = false;
  app.add_option("--milestones", milestones, "")->delimiter(',')->capture_default_str();
  app.add_option("--lr", lr, "")->capture_default_str();
  app.add_flag("--flag", flag, "");
  const char* argv[] = {"t", "--milestones", "10,13,17"};
  app.parse(3, const_cast<char**>(argv));
  nlohmann::json j = nlohmann::json::parse(cli::options_json(app));
  EXPECT_EQ(j["milestones"], "10,13,17");
  EXPECT_EQ(j["lr"], "0.01");  // not given: the default
  EXPECT_FALSE(j.contains("help"));
}

TEST(ResolveDevice, ParsesTheOptionAndNamesItInErrors) {
  EXPECT_EQ(cli::resolve_device("cpu"), Device::cpu());
  EXPECT_EQ(cli::resolve_device("cuda:1"), Device::cuda(1));
  EXPECT_EQ(cli::resolve_device("cuda"), Device::cuda(0));  // one process: its first GPU
  try {
    cli::resolve_device("gpu");
    FAIL() << "no error for --device gpu";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--device"), std::string::npos) << e.what();
  }
}
