// DeviceScope's rule (cuda/runtime.h), as a plain function the CPU tests
// cover: the device current after a scope on `scoped` that was entered with
// `previous` current. Back to `previous` only if it has a context already:
// switching to a device that nothing has used would create a context there.
#pragma once

namespace advcl::cuda {

inline int device_after_scope(int previous, int scoped, bool previous_has_context) {
  return previous == scoped || previous_has_context ? previous : scoped;
}

}  // namespace advcl::cuda
