// What the oneDNN version and the activation layout cost our convolutions: a
// standalone program (no dependency on the engine) that builds against either
// Debian's oneDNN 2.6 or a oneDNN 3.x (`#if DNNL_VERSION_MAJOR >= 3` covers the
// API change from op descriptors to primitive-descriptor constructors), and
// times forward + backward-data + backward-weight at every distinct ResNet-18
// (CIFAR) convolution, weighted by how often ResNet-18 runs it.
//
// Variants (each: the three passes, median of --repeat after --warmup):
//   fp32_nchw     plain NCHW activations, weights in the primitive's layout
//   fp32_nhwc     NHWC activations, weights in the primitive's layout
//   fp32_blocked  every operand in the layout the primitive picks (tag::any)
//   fp32_today    what engine/onednn_conv.cpp does: our NCHW/OIHW float32
//                 buffers reordered to and from the primitive's layout on
//                 every call, reorders and their buffers timed with the op
//   bf16_nhwc, bf16_blocked, bf16_today: the same with bf16 operands (x, w and
//                 the incoming gradient) and float32 results (y, gx, gw), the
//                 data types of engine/onednn_conv.cpp's bf16 primitives; in
//                 bf16_today the reorders also convert float32 to bf16, the
//                 weights twice per step (forward and backward-data).
// The "kept" variants (nchw, nhwc, blocked) time the primitives alone: a
// layout kept across layers, with weights stored in the primitive's layout and
// the bf16 operands produced by the op before, would pay no reorder at all, so
// blocked vs today bounds what keeping a layout can save. --impl prints each
// primitive's implementation, the layouts it chose and its time, and whether the
// activation layouts of one geometry's three passes agree (if not, even a kept
// layout pays a reorder between passes).
//
//   onednn_layout_bench [--batch 128] [--warmup 1] [--repeat 5] [--only NAME,NAME]
//                       [--variants NAME,NAME] [--impl]
// Threads: OMP_NUM_THREADS for an OpenMP build of oneDNN (Debian's); a TBB
// build takes every core. bench/onednn_layout_bench.sh builds and runs it
// against both libraries, and PyTorch beside them.
#include <dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// One convolution of ResNet-18 for 32x32 inputs; `count` is how many of the
// network's 20 convolutions have this geometry.
struct Geometry {
  const char* name;
  int count;
  int64_t cin, cout, hw, k, stride, pad;
  int64_t out_hw() const { return (hw + 2 * pad - k) / stride + 1; }
};

const std::vector<Geometry> kResNet18 = {
    {"stem_3_64_32", 1, 3, 64, 32, 3, 1, 1},       {"c64_64_32", 4, 64, 64, 32, 3, 1, 1},
    {"c64_128_s2", 1, 64, 128, 32, 3, 2, 1},       {"c128_128_16", 3, 128, 128, 16, 3, 1, 1},
    {"c128_256_s2", 1, 128, 256, 16, 3, 2, 1},     {"c256_256_8", 3, 256, 256, 8, 3, 1, 1},
    {"c256_512_s2", 1, 256, 512, 8, 3, 2, 1},      {"c512_512_4", 3, 512, 512, 4, 3, 1, 1},
    {"sc1x1_64_128_s2", 1, 64, 128, 32, 1, 2, 0},  {"sc1x1_128_256_s2", 1, 128, 256, 16, 1, 2, 0},
    {"sc1x1_256_512_s2", 1, 256, 512, 8, 1, 2, 0},
};

struct Variant {
  const char* name;
  dt in;         // x, w, gy
  tag act;       // activation layout the primitive sees (any: its choice)
  bool today;    // NCHW float32 buffers, reorders timed
};

const std::vector<Variant> kVariants = {
    {"fp32_nchw", dt::f32, tag::nchw, false},   {"fp32_nhwc", dt::f32, tag::nhwc, false},
    {"fp32_blocked", dt::f32, tag::any, false}, {"fp32_today", dt::f32, tag::any, true},
    {"bf16_nhwc", dt::bf16, tag::nhwc, false},  {"bf16_blocked", dt::bf16, tag::any, false},
    {"bf16_today", dt::bf16, tag::any, true},
};

// ---- the API difference between 2.x and 3.x, in one place ----

using Fwd = dnnl::convolution_forward;
using BwdData = dnnl::convolution_backward_data;
using BwdWeights = dnnl::convolution_backward_weights;

struct Descs {
  memory::desc src, wts, dst, diff_src, diff_wts, diff_dst;
  memory::dims strides, pad;
};

Fwd::primitive_desc forward_pd(const Descs& d) {
#if DNNL_VERSION_MAJOR >= 3
  return Fwd::primitive_desc(cpu(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.src,
                             d.wts, d.dst, d.strides, d.pad, d.pad);
#else
  return Fwd::primitive_desc(Fwd::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.src,
                                       d.wts, d.dst, d.strides, d.pad, d.pad),
                             cpu());
#endif
}

BwdData::primitive_desc backward_data_pd(const Descs& d, const Fwd::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return BwdData::primitive_desc(cpu(), dnnl::algorithm::convolution_direct, d.diff_src, d.wts, d.diff_dst, d.strides,
                                 d.pad, d.pad, hint);
#else
  return BwdData::primitive_desc(
      BwdData::desc(dnnl::algorithm::convolution_direct, d.diff_src, d.wts, d.diff_dst, d.strides, d.pad, d.pad),
      cpu(), hint);
#endif
}

BwdWeights::primitive_desc backward_weights_pd(const Descs& d, const Fwd::primitive_desc& hint) {
#if DNNL_VERSION_MAJOR >= 3
  return BwdWeights::primitive_desc(cpu(), dnnl::algorithm::convolution_direct, d.src, d.diff_wts, d.diff_dst,
                                    d.strides, d.pad, d.pad, hint);
#else
  return BwdWeights::primitive_desc(
      BwdWeights::desc(dnnl::algorithm::convolution_direct, d.src, d.diff_wts, d.diff_dst, d.strides, d.pad, d.pad),
      cpu(), hint);
#endif
}

// A layout in oneDNN's verbose notation, data type left out: dimensions from
// outermost to innermost ('a' = N or O, 'b' = C or I), capital if blocked,
// then the inner blocks (nChw16c = aBcd16b).
std::string layout_of(const memory::desc& md) {
#if DNNL_VERSION_MAJOR >= 3
  if (md.get_format_kind() != memory::format_kind::blocked) return "?";
  memory::dims strides = md.get_strides(), blks = md.get_inner_blks(), idxs = md.get_inner_idxs();
  int ndims = md.get_ndims();
#else
  const dnnl_memory_desc_t& c = md.data;
  if (c.format_kind != dnnl_blocked) return "?";
  const auto& b = c.format_desc.blocking;
  int ndims = c.ndims;
  memory::dims strides(b.strides, b.strides + ndims), blks(b.inner_blks, b.inner_blks + b.inner_nblks),
      idxs(b.inner_idxs, b.inner_idxs + b.inner_nblks);
#endif
  std::vector<int> order(ndims);
  for (int i = 0; i < ndims; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return strides[x] > strides[y]; });
  std::string s;
  for (int i : order) {
    bool blocked = std::find(idxs.begin(), idxs.end(), i) != idxs.end();
    s += static_cast<char>((blocked ? 'A' : 'a') + i);
  }
  for (size_t j = 0; j < blks.size(); ++j) s += std::to_string(blks[j]) + static_cast<char>('a' + idxs[j]);
  return s;
}

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other (see the hex value)";
  }
}

const char* runtime_name(unsigned r) {
  switch (r) {
    case DNNL_RUNTIME_SEQ: return "sequential";
    case DNNL_RUNTIME_OMP: return "OpenMP";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
    case DNNL_RUNTIME_SYCL: return "SYCL";
    default: return "other";
  }
}

// ---- buffers ----

// A memory of layout `md` holding uniform values in [-1, 1): written plain in
// float32, then reordered in, so a blocked layout's padding is zero and a bf16
// one is rounded as the library rounds.
memory filled(const memory::desc& md, dnnl::stream& s, uint32_t seed) {
#if DNNL_VERSION_MAJOR >= 3
  memory::dims dims = md.get_dims();
#else
  memory::dims dims = md.dims();
#endif
  tag plain_tag = dims.size() == 4 ? tag::abcd : tag::a;
  memory plain({dims, dt::f32, plain_tag}, cpu());
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto* p = static_cast<float*>(plain.get_data_handle());
  for (size_t i = 0, n = plain.get_desc().get_size() / sizeof(float); i < n; ++i) p[i] = u(rng);
  memory m(md, cpu());
  dnnl::reorder(plain, m).execute(s, plain, m);
  s.wait();
  return m;
}

// As engine/onednn_util.h: the user memory itself when the layouts agree, else
// a fresh buffer in `want` holding the reordered (and converted) data.
memory to_layout(memory& user, const memory::desc& want, dnnl::stream& s) {
  if (user.get_desc() == want) return user;
  memory m(want, cpu());
  dnnl::reorder(user, m).execute(s, user, m);
  return m;
}

memory output_in_layout(memory& user, const memory::desc& want) {
  return user.get_desc() == want ? user : memory(want, cpu());
}

void from_layout(memory& produced, memory& user, dnnl::stream& s) {
  if (produced.get_data_handle() == user.get_data_handle()) return;
  dnnl::reorder(produced, user).execute(s, produced, user);
}

// ---- one geometry in one variant ----

struct Plan {
  Fwd::primitive_desc fwd_pd;
  BwdData::primitive_desc bwd_data_pd;
  BwdWeights::primitive_desc bwd_weights_pd;
  Fwd fwd;
  BwdData bwd_data;
  BwdWeights bwd_weights;
};

Plan plan_for(const Geometry& g, int64_t n, const Variant& v) {
  memory::dims x{n, g.cin, g.hw, g.hw}, w{g.cout, g.cin, g.k, g.k}, y{n, g.cout, g.out_hw(), g.out_hw()};
  Descs d{{x, v.in, v.act},      {w, v.in, tag::any},    {y, dt::f32, v.act},
          {x, dt::f32, v.act},   {w, dt::f32, tag::any}, {y, v.in, v.act},
          {g.stride, g.stride},  {g.pad, g.pad}};
  // The hint of the backward passes: the forward of the types they pair with.
  auto fwd_pd = forward_pd(d);
  auto bwd_data_pd = backward_data_pd(d, fwd_pd);
  auto bwd_weights_pd = backward_weights_pd(d, fwd_pd);
  return {fwd_pd, bwd_data_pd, bwd_weights_pd, Fwd(fwd_pd), BwdData(bwd_data_pd), BwdWeights(bwd_weights_pd)};
}

struct Times {
  double fwd = 0, bwd_data = 0, bwd_weights = 0, total = 0;
};

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double ms_since(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
}

// Runs `step` (which times its three passes into the array) warmup + repeat
// times; the medians of each pass and of their sum.
template <class Step>
Times time_steps(int warmup, int repeat, Step&& step) {
  std::vector<double> f, bd, bw, tot;
  for (int i = 0; i < warmup + repeat; ++i) {
    double t[3];
    step(t);
    if (i < warmup) continue;
    f.push_back(t[0]);
    bd.push_back(t[1]);
    bw.push_back(t[2]);
    tot.push_back(t[0] + t[1] + t[2]);
  }
  return {median(f), median(bd), median(bw), median(tot)};
}

// Kept layout: operands already in the primitive's layouts, primitives alone.
Times time_kept(const Plan& p, int warmup, int repeat, dnnl::stream& s) {
  memory x = filled(p.fwd_pd.src_desc(), s, 1), w = filled(p.fwd_pd.weights_desc(), s, 2);
  memory y(p.fwd_pd.dst_desc(), cpu());
  memory gy = filled(p.bwd_data_pd.diff_dst_desc(), s, 3), w_bd = filled(p.bwd_data_pd.weights_desc(), s, 2);
  memory gx(p.bwd_data_pd.diff_src_desc(), cpu());
  memory gy_bw = filled(p.bwd_weights_pd.diff_dst_desc(), s, 3), x_bw = filled(p.bwd_weights_pd.src_desc(), s, 1);
  memory gw(p.bwd_weights_pd.diff_weights_desc(), cpu());
  return time_steps(warmup, repeat, [&](double* t) {
    auto a = std::chrono::steady_clock::now();
    p.fwd.execute(s, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}});
    s.wait();
    t[0] = ms_since(a);
    a = std::chrono::steady_clock::now();
    p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, gy}, {DNNL_ARG_WEIGHTS, w_bd}, {DNNL_ARG_DIFF_SRC, gx}});
    s.wait();
    t[1] = ms_since(a);
    a = std::chrono::steady_clock::now();
    p.bwd_weights.execute(s, {{DNNL_ARG_DIFF_DST, gy_bw}, {DNNL_ARG_SRC, x_bw}, {DNNL_ARG_DIFF_WEIGHTS, gw}});
    s.wait();
    t[2] = ms_since(a);
  });
}

// Today: float32 NCHW/OIHW user buffers; each pass reorders its inputs into
// fresh buffers in the primitive's layout and its output back, exactly as
// engine/onednn_conv.cpp does (the one difference: one stream, not one per call).
Times time_today(const Geometry& g, int64_t n, const Plan& p, int warmup, int repeat, dnnl::stream& s) {
  memory::dims xd{n, g.cin, g.hw, g.hw}, wd{g.cout, g.cin, g.k, g.k}, yd{n, g.cout, g.out_hw(), g.out_hw()};
  memory ux = filled({xd, dt::f32, tag::nchw}, s, 1), uw = filled({wd, dt::f32, tag::oihw}, s, 2);
  memory ugy = filled({yd, dt::f32, tag::nchw}, s, 3);
  memory uy({yd, dt::f32, tag::nchw}, cpu()), ugx({xd, dt::f32, tag::nchw}, cpu()), ugw({wd, dt::f32, tag::oihw}, cpu());
  return time_steps(warmup, repeat, [&](double* t) {
    auto a = std::chrono::steady_clock::now();
    {
      memory mx = to_layout(ux, p.fwd_pd.src_desc(), s), mw = to_layout(uw, p.fwd_pd.weights_desc(), s);
      memory my = output_in_layout(uy, p.fwd_pd.dst_desc());
      p.fwd.execute(s, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}});
      from_layout(my, uy, s);
      s.wait();
    }
    t[0] = ms_since(a);
    a = std::chrono::steady_clock::now();
    {
      memory mgy = to_layout(ugy, p.bwd_data_pd.diff_dst_desc(), s), mw = to_layout(uw, p.bwd_data_pd.weights_desc(), s);
      memory mgx = output_in_layout(ugx, p.bwd_data_pd.diff_src_desc());
      p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, mgy}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mgx}});
      from_layout(mgx, ugx, s);
      s.wait();
    }
    t[1] = ms_since(a);
    a = std::chrono::steady_clock::now();
    {
      memory mgy = to_layout(ugy, p.bwd_weights_pd.diff_dst_desc(), s), mx = to_layout(ux, p.bwd_weights_pd.src_desc(), s);
      memory mgw = output_in_layout(ugw, p.bwd_weights_pd.diff_weights_desc());
      p.bwd_weights.execute(s, {{DNNL_ARG_DIFF_DST, mgy}, {DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_WEIGHTS, mgw}});
      from_layout(mgw, ugw, s);
      s.wait();
    }
    t[2] = ms_since(a);
  });
}

void print_impl(const Geometry& g, const Variant& v, const Plan& p, const Times& t) {
  std::string xs = layout_of(p.fwd_pd.src_desc()), ys = layout_of(p.fwd_pd.dst_desc());
  // In a kept layout, one buffer serves x in forward and backward-weight, and
  // the gradients flow in the layout the activations have.
  bool agree = layout_of(p.bwd_weights_pd.src_desc()) == xs && layout_of(p.bwd_data_pd.diff_src_desc()) == xs &&
               layout_of(p.bwd_data_pd.diff_dst_desc()) == ys && layout_of(p.bwd_weights_pd.diff_dst_desc()) == ys;
  std::printf("  %-17s %-12s fwd %s [x %s w %s y %s] | bwd_data %s [gy %s w %s gx %s] | bwd_weights %s "
              "[x %s gy %s gw %s] | activation layouts agree: %s\n",
              g.name, v.name, p.fwd_pd.impl_info_str(), xs.c_str(), layout_of(p.fwd_pd.weights_desc()).c_str(),
              ys.c_str(), p.bwd_data_pd.impl_info_str(), layout_of(p.bwd_data_pd.diff_dst_desc()).c_str(),
              layout_of(p.bwd_data_pd.weights_desc()).c_str(), layout_of(p.bwd_data_pd.diff_src_desc()).c_str(),
              p.bwd_weights_pd.impl_info_str(), layout_of(p.bwd_weights_pd.src_desc()).c_str(),
              layout_of(p.bwd_weights_pd.diff_dst_desc()).c_str(),
              layout_of(p.bwd_weights_pd.diff_weights_desc()).c_str(), agree ? "yes" : "NO");
  std::printf("  %-17s %-12s ms: fwd %.2f, bwd_data %.2f, bwd_weights %.2f\n", g.name, v.name, t.fwd, t.bwd_data,
              t.bwd_weights);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

bool wanted(const std::vector<std::string>& list, const char* name) {
  return list.empty() || std::find(list.begin(), list.end(), name) != list.end();
}

int usage() {
  std::fprintf(stderr,
               "usage: onednn_layout_bench [--batch N] [--warmup N] [--repeat N] [--only GEOM,...] "
               "[--variants VAR,...] [--impl]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 128;
  int warmup = 1, repeat = 5;
  bool impl = false;
  std::vector<std::string> only, variant_names;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--batch" && has_value) batch = std::atoll(argv[++i]);
    else if (a == "--warmup" && has_value) warmup = std::atoi(argv[++i]);
    else if (a == "--repeat" && has_value) repeat = std::atoi(argv[++i]);
    else if (a == "--only" && has_value) only = split(argv[++i]);
    else if (a == "--variants" && has_value) variant_names = split(argv[++i]);
    else if (a == "--impl") impl = true;
    else return usage();
  }
  if (batch < 1 || warmup < 0 || repeat < 1) return usage();

  const dnnl_version_t* ver = dnnl_version();
  const char* omp = std::getenv("OMP_NUM_THREADS");
  std::printf("oneDNN %d.%d.%d (%s), CPU runtime %s, ISA %s (0x%x); OMP_NUM_THREADS=%s; batch %lld, warmup %d, "
              "median of %d\n",
              ver->major, ver->minor, ver->patch, ver->hash, runtime_name(ver->cpu_runtime),
              isa_name(dnnl_get_effective_cpu_isa()), static_cast<unsigned>(dnnl_get_effective_cpu_isa()),
              omp ? omp : "(unset)", static_cast<long long>(batch), warmup, repeat);

  std::vector<Variant> variants;
  for (const Variant& v : kVariants)
    if (wanted(variant_names, v.name)) variants.push_back(v);
  std::vector<Geometry> geoms;
  for (const Geometry& g : kResNet18)
    if (wanted(only, g.name)) geoms.push_back(g);
  if (variants.empty() || geoms.empty()) return usage();

  dnnl::stream s(cpu());
  std::vector<std::vector<Times>> t(geoms.size(), std::vector<Times>(variants.size()));
  std::printf("\nms per forward + backward-data + backward-weight (median)\n%-17s %5s", "geometry", "count");
  for (const Variant& v : variants) std::printf(" %13s", v.name);
  std::printf("\n");
  std::vector<std::string> impl_lines;
  for (size_t gi = 0; gi < geoms.size(); ++gi) {
    const Geometry& g = geoms[gi];
    if (!impl) std::printf("%-17s %5d", g.name, g.count), std::fflush(stdout);
    for (size_t vi = 0; vi < variants.size(); ++vi) {
      const Variant& v = variants[vi];
      try {
        Plan p = plan_for(g, batch, v);
        t[gi][vi] = v.today ? time_today(g, batch, p, warmup, repeat, s) : time_kept(p, warmup, repeat, s);
        if (impl) print_impl(g, v, p, t[gi][vi]), std::fflush(stdout);
      } catch (const dnnl::error& e) {
        std::fprintf(stderr, "%s %s: oneDNN error: %s\n", g.name, v.name, e.what());
        return 1;
      }
      if (!impl) std::printf(" %13.2f", t[gi][vi].total), std::fflush(stdout);
    }
    if (impl) {
      std::printf("%-17s %5d", g.name, g.count);
      for (size_t vi = 0; vi < variants.size(); ++vi) std::printf(" %13.2f", t[gi][vi].total);
    }
    std::printf("\n");
  }

  // The network's sum: each geometry times the number of its convolutions.
  auto weighted = [&](size_t vi, double Times::*field) {
    double sum = 0;
    for (size_t gi = 0; gi < geoms.size(); ++gi) sum += geoms[gi].count * (t[gi][vi].*field);
    return sum;
  };
  const struct {
    const char* label;
    double Times::*field;
  } rows[] = {{"ResNet-18 sum", &Times::total},
              {"  forward", &Times::fwd},
              {"  backward-data", &Times::bwd_data},
              {"  backward-weight", &Times::bwd_weights}};
  std::printf("\nweighted by the count of each geometry in ResNet-18 (%zu of its geometries), ms\n%-23s",
              geoms.size(), "");
  for (const Variant& v : variants) std::printf(" %13s", v.name);
  std::printf("\n");
  for (const auto& r : rows) {
    std::printf("%-23s", r.label);
    for (size_t vi = 0; vi < variants.size(); ++vi) std::printf(" %13.1f", weighted(vi, r.field));
    std::printf("\n");
  }
  return 0;
}
