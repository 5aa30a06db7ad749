#include "engine/counters.h"

#include <map>
#include <mutex>

namespace advcl::counters {

namespace {
std::mutex mu;
std::map<std::string, int64_t>& table() {
  static std::map<std::string, int64_t> t;
  return t;
}
}  // namespace

void bump(const char* name, int64_t by) {
  std::lock_guard<std::mutex> lock(mu);
  table()[name] += by;
}

int64_t get(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = table().find(name);
  return it == table().end() ? 0 : it->second;
}

void reset() {
  std::lock_guard<std::mutex> lock(mu);
  table().clear();
}

}  // namespace advcl::counters
