// Named event counters, so that tests can prove what ran: e.g. that an
// input-gradient pass computed no conv weight gradient
// ("conv2d.backward_weight" stays unchanged).
#pragma once
#include <cstdint>
#include <string>

namespace advcl::counters {

void bump(const char* name, int64_t by = 1);
int64_t get(const std::string& name);
void reset();

}  // namespace advcl::counters
