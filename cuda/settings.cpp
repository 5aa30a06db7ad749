#include "cuda/settings.h"

#include <atomic>

namespace advcl::cuda {

namespace {
std::atomic<bool> g_deterministic{true};
std::atomic<bool> g_tf32{true};  // cuda/settings.h: on by default
}  // namespace

void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }
void set_allow_tf32(bool on) { g_tf32 = on; }
bool allow_tf32() { return g_tf32; }

}  // namespace advcl::cuda
