// advcl's JSON output (advcl/run/json_out.h): the documents parse back to what
// was put in, the one-line and member-per-line layouts that scripts/demo.sh
// and the tests read, and the 9-digit rule for measured numbers.
#include "advcl/run/json_out.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "engine/rng.h"

using namespace advcl;
using cli::OrderedJson;

TEST(JsonOut, NumbersKeepNineSignificantDigits) {
  EXPECT_EQ(cli::json_number(0.1).dump(), "0.1");
  EXPECT_EQ(cli::json_number(0.1f).dump(), "0.100000001");  // enough to read the float back exactly
  EXPECT_EQ(static_cast<float>(std::strtod(cli::json_number(0.1f).dump().c_str(), nullptr)), 0.1f);
  EXPECT_EQ(cli::json_number(84.0).dump(), "84");
  EXPECT_EQ(cli::json_number(100 * 0.725).dump(), "72.5");  // 72.49999999999999 in double
  EXPECT_EQ(cli::json_number(1e-6).dump(), "1e-06");
  EXPECT_EQ(cli::json_number(-2.5).dump(), "-2.5");
  EXPECT_EQ(cli::json_number(8.0 / 255).dump(), "0.031372549");
  EXPECT_TRUE(cli::json_number(std::nan("")).is_null());
  EXPECT_TRUE(cli::json_number(std::numeric_limits<double>::infinity()).is_null());
  EXPECT_EQ(cli::number_text(8), "8");
  EXPECT_EQ(cli::number_text(0.5), "0.5");
  // Any value: the JSON text holds the same number as the 9-digit text.
  RngKey key{1, static_cast<uint32_t>(RngPurpose::Test), 0, 0};
  for (uint64_t i = 0; i < 2000; ++i) {
    const double v = (key.uniform_double(i) - 0.5) * std::pow(10.0, static_cast<int>(key.below(i, 16)) - 8);
    EXPECT_EQ(std::strtod(cli::json_number(v).dump().c_str(), nullptr),
              std::strtod(cli::number_text(v).c_str(), nullptr))
        << cli::number_text(v);
  }
}

TEST(JsonOut, OneLineLayoutParsesBackAndEscapes) {
  OrderedJson j{{"path", "a \"quoted\" \\ path\nwith a newline\tand a tab"},
                {"n", 3},
                {"list", {15, 20}},
                {"empty", OrderedJson::object()},
                {"none", nullptr},
                {"inner", {{"b", true}, {"a", cli::json_number(0.25)}}}};
  const std::string line = cli::json_line(j);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_NE(line.find("\"n\": 3, \"list\": [15, 20], \"empty\": {}, \"none\": null, \"inner\": {\"b\": true, \"a\": 0.25}}"),
            std::string::npos)
      << line;
  EXPECT_EQ(OrderedJson::parse(line), j);
}

TEST(JsonOut, MemberPerLineLayout) {
  OrderedJson j{{"mode", "slf"}, {"evaluations", {{{"epoch", 1}}, {{"epoch", 2}}}}, {"none", OrderedJson::array()},
                {"last", {{"epoch", 2}, {"sa", 84}}}};
  EXPECT_EQ(cli::json_members(j),
            "{\n"
            "  \"mode\": \"slf\",\n"
            "  \"evaluations\": [\n"
            "    {\"epoch\": 1},\n"
            "    {\"epoch\": 2}\n"
            "  ],\n"
            "  \"none\": [],\n"
            "  \"last\": {\"epoch\": 2, \"sa\": 84}\n"
            "}\n");
  EXPECT_EQ(OrderedJson::parse(cli::json_members(j)), j);
}

TEST(JsonOut, BytesThatAreNotUtf8StillGiveValidJson) {
  const std::string latin1 = "caf\xe9.pkl";
  const std::string line = cli::json_line(OrderedJson{{"labels", latin1}});
  const OrderedJson back = OrderedJson::parse(line);
  EXPECT_EQ(back["labels"], "caf\xef\xbf\xbd.pkl");  // U+FFFD for the bad byte
}
