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

}  // namespace advcl
