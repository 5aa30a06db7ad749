#include "engine/autocast.h"

namespace advcl::autocast {

namespace {
thread_local bool t_enabled = false;
}  // namespace

const Rule& rule(Op op) {
  for (const Rule& r : kPolicy)
    if (r.op == op) return r;
  fail("autocast: op ", static_cast<int>(op), " has no rule in kPolicy (engine/autocast.h)");
}

bool enabled() { return t_enabled; }

bool runs_bf16(Op op) { return t_enabled && rule(op).compute == Compute::Bf16Fp32Accumulate; }

AutocastGuard::AutocastGuard(bool on) : previous_(t_enabled) { t_enabled = on; }
AutocastGuard::~AutocastGuard() { t_enabled = previous_; }

}  // namespace advcl::autocast
