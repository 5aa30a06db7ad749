#include "advcl/cli/option_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>

#include "engine/parse_number.h"
#include "engine/common.h"

namespace advcl::cli {

namespace {

// Every shared option with a rule. A new command's option of the same name
// gets the same check.
const std::map<std::string, OptionRule>& rules() {
  static const std::map<std::string, OptionRule> r{
      // schedules and sizes
      {"--epoch", OptionRule::PositiveInt},
      {"--epochs", OptionRule::PositiveInt},
      {"--batch-size", OptionRule::PositiveInt},
      {"--eval-batch-size", OptionRule::PositiveInt},
      {"--eval-every", OptionRule::PositiveInt},
      {"--width", OptionRule::PositiveInt},
      {"--size", OptionRule::PositiveInt},
      {"--restarts", OptionRule::PositiveInt},
      {"--iterations", OptionRule::PositiveInt},
      {"--count", OptionRule::PositiveInt},
      // counts where 0 means off / all / the default
      {"--threads", OptionRule::NonNegativeInt},
      {"--workers", OptionRule::NonNegativeInt},
      {"--log-every", OptionRule::NonNegativeInt},
      {"--save-epoch", OptionRule::NonNegativeInt},
      {"--save-steps", OptionRule::NonNegativeInt},
      {"--stop-epoch", OptionRule::NonNegativeInt},
      {"--limit", OptionRule::NonNegativeInt},
      {"--per-class", OptionRule::NonNegativeInt},
      {"--test-limit", OptionRule::NonNegativeInt},
      {"--iter", OptionRule::NonNegativeInt},
      {"--steps", OptionRule::NonNegativeInt},
      {"--attack-steps", OptionRule::NonNegativeInt},
      {"--eval-steps", OptionRule::NonNegativeInt},
      {"--bn-group-size", OptionRule::NonNegativeInt},
      {"--dist-check-every", OptionRule::NonNegativeInt},
      {"--milestones", OptionRule::NonNegativeInt},
      // rates and weights
      {"--learning_rate", OptionRule::PositiveReal},
      {"--lr", OptionRule::PositiveReal},
      {"--nce_t", OptionRule::PositiveReal},
      {"--weight_decay", OptionRule::NonNegativeReal},
      {"--epsilon", OptionRule::NonNegativeReal},
      {"--eps", OptionRule::NonNegativeReal},
      {"--step-size", OptionRule::NonNegativeReal},
      {"--beta", OptionRule::NonNegativeReal},
      {"--gamma", OptionRule::NonNegativeReal},
      {"--ce_weight", OptionRule::NonNegativeReal},
      {"--radius", OptionRule::NonNegativeReal},
      {"--momentum", OptionRule::Fraction},
  };
  return r;
}

// The whole of `text` as a number (no trailing characters); false otherwise.
bool parse_real(const std::string& text, double* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && errno != ERANGE;
}

}  // namespace

bool option_rule(const std::string& option, OptionRule* rule) {
  auto it = rules().find(option);
  if (it == rules().end()) return false;
  *rule = it->second;
  return true;
}

void check_option_value(const std::string& option, OptionRule rule, const std::string& value) {
  switch (rule) {
    case OptionRule::PositiveInt:
    case OptionRule::NonNegativeInt: {
      const int64_t lo = rule == OptionRule::PositiveInt ? 1 : 0;
      int64_t v = 0;
      if (!parse_int64(value, &v)) fail(option, ": '", value, "' is not an integer");
      if (v < lo) fail(option, " must be ", lo == 1 ? "at least 1" : ">= 0", ", got ", value);
      return;
    }
    case OptionRule::PositiveReal:
    case OptionRule::NonNegativeReal:
    case OptionRule::Fraction: {
      double v = 0;
      if (!parse_real(value, &v)) fail(option, ": '", value, "' is not a number");
      if (!std::isfinite(v)) fail(option, " must be a finite number, got ", value);
      if (rule == OptionRule::PositiveReal && !(v > 0)) fail(option, " must be positive, got ", value);
      if (rule == OptionRule::NonNegativeReal && !(v >= 0)) fail(option, " must be >= 0, got ", value);
      if (rule == OptionRule::Fraction && !(v >= 0 && v < 1)) fail(option, " must be in [0, 1), got ", value);
      return;
    }
  }
}

void check_options(const CLI::App& app) {
  for (const CLI::Option* opt : app.get_options()) {
    for (const std::string& name : opt->get_lnames()) {
      OptionRule rule;
      if (!option_rule("--" + name, &rule)) continue;
      for (const std::string& given : opt->results()) {
        // (A list option's values, whether or not CLI11 split them at ',')
        size_t start = 0;
        while (start <= given.size()) {
          size_t end = given.find(',', start);
          if (end == std::string::npos) end = given.size();
          std::string v = given.substr(start, end - start);
          if (!v.empty() || given.empty()) check_option_value("--" + name, rule, v);
          start = end + 1;
        }
      }
      break;
    }
  }
  const CLI::Option* resume = app.get_option_no_throw("--resume");
  const CLI::Option* no_resume = app.get_option_no_throw("--no-resume");
  if (resume && no_resume && resume->count() > 0 && no_resume->count() > 0)
    fail("--resume and --no-resume exclude each other: --resume continues --out's run, --no-resume starts afresh");
}

}  // namespace advcl::cli
