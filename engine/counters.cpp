#include "engine/counters.h"

#include <atomic>
#include <map>
#include <mutex>

namespace advcl::counters {

namespace {
std::mutex mu;
std::map<std::string, int64_t>& table() {
  static std::map<std::string, int64_t> t;
  return t;
}
// Bumped on every host read, so a relaxed atomic rather than the locked table.
std::atomic<int64_t> g_host_syncs{0};
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

void count_host_sync() { g_host_syncs.fetch_add(1, std::memory_order_relaxed); }

int64_t host_syncs() { return g_host_syncs.load(std::memory_order_relaxed); }

}  // namespace advcl::counters
