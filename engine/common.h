// Shared definitions for the whole engine: the error type, fail() and the
// host/device qualifier (from cuda/base.h, the bottom layer, so that cuda/
// shares them without including engine/), and shapes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/base.h"

namespace advcl {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);

// The parts with `sep` between them ("a, b, c"): names in messages and metadata.
inline std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
  return s;
}

}  // namespace advcl
