// One set of checks for the options the commands share, run by every command
// (simclr, pretrain, finetune, eval, pseudo-labels, features, export, data show)
// right after parsing, before any work: a bad value is an error naming the
// option and the value ("--momentum must be in [0, 1), got 1.5"), never a
// failure deep inside a step, a NaN at step 2, or a silent default.
//
// The rules go by option name, so an option means the same wherever it
// appears (e.g. --epsilon >= 0 in pretrain and finetune alike). Only values
// given on the command line are checked; the defaults are valid by design.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace advcl::cli {

// What an option's values must be.
enum class OptionRule {
  PositiveInt,       // an integer >= 1 (epochs, batch sizes, width, image size)
  NonNegativeInt,    // an integer >= 0 (threads, workers, steps, counts; 0 means "off" or "all")
  PositiveReal,      // a finite number > 0 (learning rate, temperature)
  NonNegativeReal,   // a finite number >= 0 (weight decay, attack radius, loss weights)
  Fraction,          // a finite number in [0, 1) (momentum)
};

// The rule of an option name ("--momentum"), or false if it has none.
bool option_rule(const std::string& option, OptionRule* rule);

// Checks one value of `option` against its rule; the error names both.
void check_option_value(const std::string& option, OptionRule rule, const std::string& value);

// Checks every option of `app` that has a rule and was given (every value of
// a list option), and flags that exclude each other (--resume, --no-resume).
void check_options(const CLI::App& app);

}  // namespace advcl::cli
