#include "engine/onednn_conv.h"

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "engine/counters.h"
#include "engine/onednn_util.h"

namespace advcl::onednn {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;
using namespace detail;

// Primitives are cached per shape, one cache per pass. The forward pass
// depends on whether there is a bias; the backward passes do not (the bias
// gradient is a plain sum in conv2d.cpp), so they are keyed on the geometry
// alone: a convolution with bias and one without share them. Each backward
// primitive is built on its first use, so inference never builds any and an
// input-gradient-only pass (PGD) never builds the weight-gradient one.
// For NCHW activations the library chooses its preferred (blocked) memory
// layouts (format_tag::any) and we reorder our NCHW/OIHW buffers to and from
// them around each call. For channels-last activations the primitives are
// told to use NHWC itself, so only the weights are reordered (and, in bf16,
// the activations converted in place of layout: a cheap streaming pass).
// In bf16 the primitives read bf16 operands (the reorders from our float32
// buffers convert them, rounding to nearest even) and write float32 results,
// so a bf16 plan differs from the float32 one of the same geometry.
using Geometry =
    std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;

Geometry key_of(const kernels::ConvGeometry& g, ConvCall call) {
  return {g.N, g.Cin, g.H, g.W, g.Cout, g.kH, g.kW, g.stride, g.pad, call.in == Inputs::Bf16, call.channels_last};
}

// Our buffers' activation layout, and the one the primitives are built for.
tag user_tag(ConvCall call) { return call.channels_last ? tag::nhwc : tag::nchw; }
tag primitive_tag(ConvCall call) { return call.channels_last ? tag::nhwc : tag::any; }

struct Forward {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
};
struct BackwardData {
  dnnl::convolution_backward_data::primitive_desc pd;
  dnnl::convolution_backward_data prim;
};
struct BackwardWeights {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights prim;
};

// The memory descriptors of one geometry: x (src), w (wts) and y (dst), or
// their gradients in the backward passes, each in the type that pass reads
// or writes it; the weights in the library's choice of layout, the
// activations in primitive_tag's.
struct Descs {
  memory::desc src, wts, dst;
  memory::dims strides, pad;
  Descs(const kernels::ConvGeometry& g, ConvCall call, dt src_t, dt wts_t, dt dst_t)
      : src({g.N, g.Cin, g.H, g.W}, src_t, primitive_tag(call)),
        wts({g.Cout, g.Cin, g.kH, g.kW}, wts_t, tag::any),
        dst({g.N, g.Cout, g.OH, g.OW}, dst_t, primitive_tag(call)),
        strides{g.stride, g.stride},
        pad{g.pad, g.pad} {}
};

dt input_type(Inputs in) { return in == Inputs::Bf16 ? dt::bf16 : dt::f32; }

dnnl::convolution_forward::primitive_desc forward_pd(const kernels::ConvGeometry& g, bool bias, ConvCall call) {
  Descs d(g, call, input_type(call.in), input_type(call.in), dt::f32);
  auto kind = dnnl::prop_kind::forward_training;
  auto alg = dnnl::algorithm::convolution_direct;
  auto desc = bias ? dnnl::convolution_forward::desc(kind, alg, d.src, d.wts, memory::desc({g.Cout}, dt::f32, tag::x),
                                                     d.dst, d.strides, d.pad, d.pad)
                   : dnnl::convolution_forward::desc(kind, alg, d.src, d.wts, d.dst, d.strides, d.pad, d.pad);
  return dnnl::convolution_forward::primitive_desc(desc, cpu_engine());
}

// The entry for `key` in `cache`, built by `make` (under the lock) on first use.
template <class Key, class V, class Make>
const V& cached(std::map<Key, std::unique_ptr<V>>& cache, std::mutex& mu, const Key& key, Make&& make) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  return *cache.emplace(key, std::make_unique<V>(make())).first->second;
}

const Forward& forward_for(const kernels::ConvGeometry& g, bool bias, ConvCall call) {
  static std::mutex mu;
  static std::map<std::pair<Geometry, bool>, std::unique_ptr<Forward>> cache;
  return cached(cache, mu, std::make_pair(key_of(g, call), bias), [&] {
    counters::bump(call.in == Inputs::Bf16 ? "onednn.conv.plan.forward.bf16" : "onednn.conv.plan.forward");
    auto pd = forward_pd(g, bias, call);
    return Forward{pd, dnnl::convolution_forward(pd)};
  });
}

// Backward-data: diff_src (float32) from diff_dst and the weights (input type).
const BackwardData& backward_data_for(const kernels::ConvGeometry& g, ConvCall call) {
  static std::mutex mu;
  static std::map<Geometry, std::unique_ptr<BackwardData>> cache;
  return cached(cache, mu, key_of(g, call), [&] {
    counters::bump(call.in == Inputs::Bf16 ? "onednn.conv.plan.backward_data.bf16"
                                           : "onednn.conv.plan.backward_data");
    Descs d(g, call, dt::f32, input_type(call.in), input_type(call.in));
    dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, d.src, d.wts, d.dst, d.strides,
                                              d.pad, d.pad),
        cpu_engine(), forward_pd(g, false, call));  // the hint: a descriptor only, no primitive is built for it
    return BackwardData{pd, dnnl::convolution_backward_data(pd)};
  });
}

// Backward-weight: diff_weights (float32) from src and diff_dst (input type).
const BackwardWeights& backward_weights_for(const kernels::ConvGeometry& g, ConvCall call) {
  static std::mutex mu;
  static std::map<Geometry, std::unique_ptr<BackwardWeights>> cache;
  return cached(cache, mu, key_of(g, call), [&] {
    counters::bump(call.in == Inputs::Bf16 ? "onednn.conv.plan.backward_weights.bf16"
                                           : "onednn.conv.plan.backward_weights");
    Descs d(g, call, input_type(call.in), dt::f32, input_type(call.in));
    dnnl::convolution_backward_weights::primitive_desc pd(
        dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, d.src, d.wts, d.dst,
                                                 d.strides, d.pad, d.pad),
        cpu_engine(), forward_pd(g, false, call));
    return BackwardWeights{pd, dnnl::convolution_backward_weights(pd)};
  });
}

}  // namespace

void conv2d_forward(const kernels::ConvGeometry& g, const float* x, const float* w, const float* bias, float* y,
                    ConvCall call) {
  guarded("conv2d", "forward", [&] {
    const Forward& p = forward_for(g, bias != nullptr, call);
    dnnl::stream s(cpu_engine());
    memory ux = plain({g.N, g.Cin, g.H, g.W}, user_tag(call), x), uw = plain({g.Cout, g.Cin, g.kH, g.kW}, tag::oihw, w);
    memory uy = plain({g.N, g.Cout, g.OH, g.OW}, user_tag(call), y);
    memory mx = to_layout(ux, p.pd.src_desc(), s), mw = to_layout(uw, p.pd.weights_desc(), s);
    memory my = output_in_layout(uy, p.pd.dst_desc());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}};
    if (bias) args.insert({DNNL_ARG_BIAS, plain({g.Cout}, tag::x, bias)});
    p.prim.execute(s, args);
    from_layout(my, uy, s);
    s.wait();
  });
}

void conv2d_backward_data(const kernels::ConvGeometry& g, const float* gy, const float* w, float* gx,
                          ConvCall call) {
  guarded("conv2d", "backward data", [&] {
    const BackwardData& p = backward_data_for(g, call);
    dnnl::stream s(cpu_engine());
    memory ugy = plain({g.N, g.Cout, g.OH, g.OW}, user_tag(call), gy);
    memory uw = plain({g.Cout, g.Cin, g.kH, g.kW}, tag::oihw, w);
    memory ugx = plain({g.N, g.Cin, g.H, g.W}, user_tag(call), gx);
    memory mgy = to_layout(ugy, p.pd.diff_dst_desc(), s), mw = to_layout(uw, p.pd.weights_desc(), s);
    memory mgx = output_in_layout(ugx, p.pd.diff_src_desc());
    p.prim.execute(s, {{DNNL_ARG_DIFF_DST, mgy}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mgx}});
    from_layout(mgx, ugx, s);
    s.wait();
  });
}

void conv2d_backward_weight(const kernels::ConvGeometry& g, const float* gy, const float* x, float* gw,
                            ConvCall call) {
  guarded("conv2d", "backward weights", [&] {
    const BackwardWeights& p = backward_weights_for(g, call);
    dnnl::stream s(cpu_engine());
    memory ugy = plain({g.N, g.Cout, g.OH, g.OW}, user_tag(call), gy);
    memory ux = plain({g.N, g.Cin, g.H, g.W}, user_tag(call), x);
    memory ugw = plain({g.Cout, g.Cin, g.kH, g.kW}, tag::oihw, gw);
    memory mgy = to_layout(ugy, p.pd.diff_dst_desc(), s), mx = to_layout(ux, p.pd.src_desc(), s);
    memory mgw = output_in_layout(ugw, p.pd.diff_weights_desc());
    p.prim.execute(s, {{DNNL_ARG_DIFF_DST, mgy}, {DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_WEIGHTS, mgw}});
    from_layout(mgw, ugw, s);
    s.wait();
  });
}

}  // namespace advcl::onednn
