// Helpers shared by the oneDNN-backed ops (onednn_conv.cpp, onednn_matmul.cpp):
// the one CPU engine, wrapping our plain buffers as oneDNN memory, reordering
// to and from a primitive's preferred layout, and turning oneDNN's exceptions
// into advcl::Error. Internal to those two files.
#pragma once
#include <dnnl.hpp>

#include "engine/common.h"

namespace advcl::onednn::detail {

inline dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// A user buffer in plain layout `t`.
inline dnnl::memory plain(const dnnl::memory::dims& dims, dnnl::memory::format_tag t, const float* p) {
  return dnnl::memory({dims, dnnl::memory::data_type::f32, t}, cpu_engine(), const_cast<float*>(p));
}

// The same data in the layout `want`: the user memory itself when the layouts
// agree, else a reordered copy.
inline dnnl::memory to_layout(const dnnl::memory& user, const dnnl::memory::desc& want, dnnl::stream& s) {
  if (user.get_desc() == want) return user;
  dnnl::memory m(want, cpu_engine());
  dnnl::reorder(user, m).execute(s, const_cast<dnnl::memory&>(user), m);
  return m;
}

// Output side: the user buffer itself when the layouts agree, else a buffer
// in the primitive's layout that from_layout copies back afterwards.
inline dnnl::memory output_in_layout(const dnnl::memory& user, const dnnl::memory::desc& want) {
  return user.get_desc() == want ? user : dnnl::memory(want, cpu_engine());
}

inline void from_layout(dnnl::memory& produced, dnnl::memory& user, dnnl::stream& s) {
  if (produced.get(true) == user.get(true)) return;
  dnnl::reorder(produced, user).execute(s, produced, user);
}

// Runs fn, reporting a oneDNN failure as advcl::Error naming the op and pass.
template <class Fn>
void guarded(const char* op, const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const dnnl::error& e) {
    fail(op, " (oneDNN ", what, "): ", e.what());
  }
}

}  // namespace advcl::onednn::detail
