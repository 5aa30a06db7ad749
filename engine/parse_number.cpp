#include "engine/parse_number.h"

#include <cerrno>
#include <cstdlib>

#include "engine/common.h"

namespace advcl {

bool parse_int64(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 32) return false;
  size_t digits = (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (digits == text.size()) return false;
  for (size_t i = digits; i < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9') return false;
  errno = 0;
  long long v = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

int64_t metadata_int(const std::string& file, const std::string& key, const std::string& text) {
  int64_t v = 0;
  if (!parse_int64(text, &v))
    fail(file, ": metadata '", key, "' is '", text,
         "', not an integer (was the file edited or damaged?)");
  return v;
}

}  // namespace advcl
