// How advcl writes JSON: metrics.jsonl, run.json, results.json, eval --json.
//
// Every document is built as an nlohmann::json value, so escaping and syntax
// are the library's, never string concatenation. What this header adds is
// the layout people and scripts read (scripts/demo.sh, the tests): one line
// with ", " and ": " between members (json_line), or an object with a member
// per line (json_members), and one rule for measured numbers (json_number).
//
// Strings that are not valid UTF-8 (a Latin-1 file name) are written with
// U+FFFD in place of the bad bytes: the output is always valid JSON.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace advcl::cli {

// A document whose keys keep the order they were set in (results.json reads
// top-down). Metrics lines use nlohmann::json, whose keys are sorted.
using OrderedJson = nlohmann::ordered_json;

// A measured number (a loss, an accuracy, seconds) for JSON: rounded to 9
// significant digits, enough to read a float32 value back exactly without
// the noise of a double's 17 (72.5, not 72.49999999999999), and an integral
// value as an integer ("84", not "84.0"). Not finite: null, as JSON has no
// NaN or infinity.
nlohmann::json json_number(double v);
// The same 9 significant digits as text, for progress lines and attack
// descriptions: "0.1", "8", "1e-06".
std::string number_text(double v);

// {"a": 1, "b": [1, 2], "c": {"d": "e"}}: the whole value on one line.
template <class Json>
std::string json_line(const Json& j);
// An object with one member per line and each member's value on one line,
// except a non-empty array, whose elements get a line each:
//   {
//     "mode": "slf",
//     "evaluations": [
//       {"epoch": 1, ...},
//       {"epoch": 2, ...}
//     ],
//     "best": {"epoch": 2, ...}
//   }
// followed by a newline.
template <class Json>
std::string json_members(const Json& object);

}  // namespace advcl::cli
