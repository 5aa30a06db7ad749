#include "engine/onednn_conv.h"

#include <dnnl.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "engine/common.h"

namespace advcl::onednn {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// The three primitive descriptors of one convolution geometry. The library
// chooses its preferred (blocked) memory layouts (format_tag::any); we reorder
// our NCHW/OIHW buffers to and from them around each call.
struct Plan {
  dnnl::convolution_forward::primitive_desc fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights;
  dnnl::convolution_forward fwd_prim;
  dnnl::convolution_backward_data bwd_data_prim;
  dnnl::convolution_backward_weights bwd_weights_prim;
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;

const Plan& plan_for(const kernels::ConvGeometry& g, bool bias) {
  static std::mutex mu;
  static std::map<Key, std::unique_ptr<Plan>> cache;
  Key key{g.N, g.Cin, g.H, g.W, g.Cout, g.kH, g.kW, g.stride, g.pad, bias};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;

  memory::dims src{g.N, g.Cin, g.H, g.W}, wts{g.Cout, g.Cin, g.kH, g.kW}, dst{g.N, g.Cout, g.OH, g.OW};
  memory::dims strides{g.stride, g.stride}, pad{g.pad, g.pad};
  memory::desc src_any(src, dt::f32, tag::any), wts_any(wts, dt::f32, tag::any), dst_any(dst, dt::f32, tag::any);
  memory::desc bias_md({g.Cout}, dt::f32, tag::x);
  auto& eng = cpu_engine();
  auto fwd_desc = bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                         dnnl::algorithm::convolution_direct, src_any, wts_any,
                                                         bias_md, dst_any, strides, pad, pad)
                       : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                         dnnl::algorithm::convolution_direct, src_any, wts_any,
                                                         dst_any, strides, pad, pad);
  auto plan = std::make_unique<Plan>();
  plan->fwd = dnnl::convolution_forward::primitive_desc(fwd_desc, eng);
  plan->bwd_data = dnnl::convolution_backward_data::primitive_desc(
      dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, src_any, wts_any, dst_any, strides,
                                            pad, pad),
      eng, plan->fwd);
  plan->bwd_weights = dnnl::convolution_backward_weights::primitive_desc(
      dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src_any, wts_any, dst_any,
                                               strides, pad, pad),
      eng, plan->fwd);
  plan->fwd_prim = dnnl::convolution_forward(plan->fwd);
  plan->bwd_data_prim = dnnl::convolution_backward_data(plan->bwd_data);
  plan->bwd_weights_prim = dnnl::convolution_backward_weights(plan->bwd_weights);
  return *cache.emplace(key, std::move(plan)).first->second;
}

// A user buffer in plain layout, and the same data in the layout `want`
// (the same memory when the layouts agree, else a reordered copy).
memory plain(const memory::dims& dims, tag t, const float* p) {
  return memory({dims, dt::f32, t}, cpu_engine(), const_cast<float*>(p));
}

memory to_layout(const memory& user, const memory::desc& want, dnnl::stream& s) {
  if (user.get_desc() == want) return user;
  memory m(want, cpu_engine());
  dnnl::reorder(user, m).execute(s, const_cast<memory&>(user), m);
  return m;
}

// Output side: the user buffer itself when the layouts agree, else a buffer
// in the primitive's layout that from_layout copies back afterwards.
memory output_in_layout(const memory& user, const memory::desc& want) {
  return user.get_desc() == want ? user : memory(want, cpu_engine());
}

void from_layout(memory& produced, memory& user, dnnl::stream& s) {
  if (produced.get(true) == user.get(true)) return;
  dnnl::reorder(produced, user).execute(s, produced, user);
}

template <class Fn>
void guarded(const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const dnnl::error& e) {
    fail("conv2d (oneDNN ", what, "): ", e.what());
  }
}

}  // namespace

void conv2d_forward(const kernels::ConvGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  guarded("forward", [&] {
    const Plan& p = plan_for(g, bias != nullptr);
    dnnl::stream s(cpu_engine());
    memory ux = plain({g.N, g.Cin, g.H, g.W}, tag::nchw, x), uw = plain({g.Cout, g.Cin, g.kH, g.kW}, tag::oihw, w);
    memory uy = plain({g.N, g.Cout, g.OH, g.OW}, tag::nchw, y);
    memory mx = to_layout(ux, p.fwd.src_desc(), s), mw = to_layout(uw, p.fwd.weights_desc(), s);
    memory my = output_in_layout(uy, p.fwd.dst_desc());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}};
    if (bias) args.insert({DNNL_ARG_BIAS, plain({g.Cout}, tag::x, bias)});
    p.fwd_prim.execute(s, args);
    from_layout(my, uy, s);
    s.wait();
  });
}

void conv2d_backward_data(const kernels::ConvGeometry& g, const float* gy, const float* w, float* gx) {
  guarded("backward data", [&] {
    const Plan& p = plan_for(g, false);
    dnnl::stream s(cpu_engine());
    memory ugy = plain({g.N, g.Cout, g.OH, g.OW}, tag::nchw, gy), uw = plain({g.Cout, g.Cin, g.kH, g.kW}, tag::oihw, w);
    memory ugx = plain({g.N, g.Cin, g.H, g.W}, tag::nchw, gx);
    memory mgy = to_layout(ugy, p.bwd_data.diff_dst_desc(), s), mw = to_layout(uw, p.bwd_data.weights_desc(), s);
    memory mgx = output_in_layout(ugx, p.bwd_data.diff_src_desc());
    p.bwd_data_prim.execute(s, {{DNNL_ARG_DIFF_DST, mgy}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mgx}});
    from_layout(mgx, ugx, s);
    s.wait();
  });
}

void conv2d_backward_weight(const kernels::ConvGeometry& g, const float* gy, const float* x, float* gw) {
  guarded("backward weights", [&] {
    const Plan& p = plan_for(g, false);
    dnnl::stream s(cpu_engine());
    memory ugy = plain({g.N, g.Cout, g.OH, g.OW}, tag::nchw, gy), ux = plain({g.N, g.Cin, g.H, g.W}, tag::nchw, x);
    memory ugw = plain({g.Cout, g.Cin, g.kH, g.kW}, tag::oihw, gw);
    memory mgy = to_layout(ugy, p.bwd_weights.diff_dst_desc(), s), mx = to_layout(ux, p.bwd_weights.src_desc(), s);
    memory mgw = output_in_layout(ugw, p.bwd_weights.diff_weights_desc());
    p.bwd_weights_prim.execute(s, {{DNNL_ARG_DIFF_DST, mgy}, {DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_WEIGHTS, mgw}});
    from_layout(mgw, ugw, s);
    s.wait();
  });
}

}  // namespace advcl::onednn
