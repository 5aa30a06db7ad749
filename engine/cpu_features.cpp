#include "engine/cpu_features.h"

#include <dnnl.h>

#include <cstdint>
#include <cstdio>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ADVCL_X86 1
#endif

namespace advcl::cpu {

namespace {

#ifdef ADVCL_X86
// The OS-enabled register state (XCR0), or 0 when the OS does not expose it.
uint64_t xcr0() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}
#endif

Bf16Support detect() {
  Bf16Support s;
#ifdef ADVCL_X86
  unsigned a, b, c, d;
  const uint64_t x = xcr0();
  const bool avx512_state = (x & 0xe6) == 0xe6;             // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  const bool tile_state = (x & (3ull << 17)) == (3ull << 17);  // XTILECFG, XTILEDATA
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned max_sub = a;
    s.amx_bf16 = tile_state && (d & (1u << 22)) && (d & (1u << 24));
    if (max_sub >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      s.avx512_bf16 = avx512_state && (a & (1u << 5));
    }
  }
#endif
  const int isa = static_cast<int>(dnnl_get_effective_cpu_isa());
  s.onednn_isa = onednn_isa_name(isa);
  const int bf16_bits = static_cast<int>(dnnl_cpu_isa_avx512_core_bf16);
  s.onednn_bf16 = (isa & bf16_bits) == bf16_bits;
  return s;
}

}  // namespace

std::string Bf16Support::missing() const {
  if (native()) return "";
  if (!avx512_bf16 && !amx_bf16)
    return "this CPU has no native bf16 dot products (neither AVX512_BF16 nor AMX-BF16, or the OS has not "
           "enabled their registers)";
  return "oneDNN dispatches to " + onednn_isa + ", which has no bf16 instructions (is DNNL_MAX_CPU_ISA or "
         "ONEDNN_MAX_CPU_ISA set lower?)";
}

const Bf16Support& bf16_support() {
  static const Bf16Support s = detect();
  return s;
}

std::string onednn_isa_name(int isa) {
  switch (isa) {
    case dnnl_cpu_isa_all: return "all";
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "isa 0x%x", static_cast<unsigned>(isa));
  return buf;
}

}  // namespace advcl::cpu
