// Element types a tensor can hold.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "engine/common.h"

namespace advcl {

enum class DType : uint8_t { Float32, Float64, BFloat16, Int32, Int64, UInt8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
bool is_floating(DType t);

// bfloat16: the top 16 bits of an IEEE float32. Conversion rounds to nearest
// even, as the hardware and PyTorch do; NaN stays NaN.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  ADVCL_HD explicit BFloat16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it quiet NaN
      bits = static_cast<uint16_t>((u >> 16) | 0x40);
      return;
    }
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    bits = static_cast<uint16_t>((u + rounding) >> 16);
  }
  ADVCL_HD operator float() const {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

// Maps a C++ type to its DType.
template <class T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::Float64; };
template <> struct DTypeOf<BFloat16> { static constexpr DType value = DType::BFloat16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::Int64; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::UInt8; };

// Calls fn(T{}) with T the C++ type of `t`, for any dtype.
template <class Fn>
decltype(auto) visit_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    case DType::BFloat16: return fn(BFloat16{});
    case DType::Int32: return fn(int32_t{});
    case DType::Int64: return fn(int64_t{});
    case DType::UInt8: return fn(uint8_t{});
  }
  fail("unknown dtype");
}

// Calls fn(T{}) for the floating types that ops compute in (float32 and
// float64, the latter for gradient checks); any other dtype is an error
// naming the op.
template <class Fn>
decltype(auto) visit_float(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::Float32: return fn(float{});
    case DType::Float64: return fn(double{});
    default: fail(op, ": dtype ", dtype_name(t), " is not supported (use float32 or float64)");
  }
}

}  // namespace advcl
