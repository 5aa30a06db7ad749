#include "advcl/run/json_out.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "engine/common.h"

namespace advcl::cli {

std::string number_text(double v) {
  std::ostringstream os;
  os.precision(9);
  os << v;
  return os.str();
}

nlohmann::json json_number(double v) {
  if (!std::isfinite(v)) return nullptr;
  // Rounded through its 9-digit text, so that the library's shortest
  // round-trip printing writes those digits back.
  const double rounded = std::strtod(number_text(v).c_str(), nullptr);
  // Integral values below 2^53 are exact as integers; "84" reads as "84.0" did.
  if (rounded == std::trunc(rounded) && std::fabs(rounded) < 9007199254740992.0)
    return static_cast<int64_t>(rounded);
  return rounded;
}

namespace {

// A scalar (or an empty container) as the library writes it.
template <class Json>
std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

template <class Json>
std::string json_line(const Json& j) {
  if (j.empty() || !j.is_structured()) return dump(j);
  std::string s;
  const char* sep = "";
  for (auto it = j.begin(); it != j.end(); ++it) {
    s += sep;
    if (j.is_object()) s += dump(Json(it.key())) + ": ";
    s += json_line(*it);
    sep = ", ";
  }
  return j.is_object() ? "{" + s + "}" : "[" + s + "]";
}

template <class Json>
std::string json_members(const Json& object) {
  if (!object.is_object()) fail("json_members: not a JSON object");
  std::string s = "{";
  const char* sep = "\n";
  for (auto it = object.begin(); it != object.end(); ++it) {
    s += sep + std::string("  ") + dump(Json(it.key())) + ": ";
    if (it->is_array() && !it->empty()) {
      const char* item_sep = "[\n    ";
      for (const Json& item : *it) {
        s += item_sep + json_line(item);
        item_sep = ",\n    ";
      }
      s += "\n  ]";
    } else {
      s += json_line(*it);
    }
    sep = ",\n";
  }
  return s + "\n}\n";
}

template std::string json_line(const nlohmann::json&);
template std::string json_line(const OrderedJson&);
template std::string json_members(const nlohmann::json&);
template std::string json_members(const OrderedJson&);

}  // namespace advcl::cli
