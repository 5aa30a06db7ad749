// What this CPU can do for bf16, found at run time: whether it has native bf16
// dot products (AVX512_BF16, or AMX-BF16 tiles), with the operating system's
// support for their registers, and which instruction set oneDNN dispatches to.
// `--precision bf16` needs native bf16: without it oneDNN would emulate bf16
// on float32 units, slower than float32 itself.
#pragma once
#include <string>

namespace advcl::cpu {

struct Bf16Support {
  bool avx512_bf16 = false;  // cpuid leaf 7.1 EAX bit 5, with AVX-512 state enabled by the OS (XCR0)
  bool amx_bf16 = false;     // cpuid leaf 7.0 EDX bits 22 (AMX-BF16) and 24 (AMX-TILE), tile state in XCR0
  std::string onednn_isa;    // the ISA oneDNN uses, e.g. "avx512_core_bf16" (dnnl_get_effective_cpu_isa)
  bool onednn_bf16 = false;  // oneDNN's ISA includes bf16 instructions (avx512_core_bf16 or amx)

  // Native bf16 dot products that oneDNN will use.
  bool native() const { return (avx512_bf16 || amx_bf16) && onednn_bf16; }
  // Why native() is false, in words for an error message ("" when it is true).
  std::string missing() const;
};

// Detected once, on first call.
const Bf16Support& bf16_support();

// The name of a dnnl_cpu_isa_t value ("avx512_core_bf16"; "isa 0x..." for one unknown).
std::string onednn_isa_name(int isa);

}  // namespace advcl::cpu
