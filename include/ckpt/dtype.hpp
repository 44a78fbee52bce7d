// ckpt/dtype.hpp — element types: the DType enum, sizes, names in every spelling we read or
// write (ours, safetensors, NumPy, PyTorch), dtype_of<T>, and the 16-bit float storage types.
#pragma once

#include <array>        // name tables
#include <bit>          // std::bit_cast for float <-> bits
#include <cmath>        // std::ldexp in float8 decoding
#include <complex>      // complex64/complex128 element types
#include <cstdint>      // fixed-width integers
#include <optional>     // parse results
#include <string>       // error text
#include <string_view>  // names
#include <type_traits>  // dtype_of detection

#include "error.hpp"  // unsupported_error

namespace ckpt {

/// Element type of a tensor. The numeric values are part of no file format; names are.
enum class DType : std::uint8_t {
  f64, f32, f16, bf16, f8_e4m3, f8_e5m2,
  i8, i16, i32, i64, u8, u16, u32, u64,
  boolean, c64, c128,
};

inline constexpr std::size_t dtype_count = 17;

namespace detail {
struct dtype_info {
  DType type;
  std::size_t size;
  std::string_view name;         // ours: "f32"
  std::string_view safetensors;  // "F32" ("" = not representable)
  std::string_view numpy;        // little-endian descr "<f4" ("" = none)
  std::string_view torch;        // torch dtype attribute: "float32"
  std::string_view torch_storage;// legacy storage class: "FloatStorage" ("" = none)
  char kind;                     // 'f' float, 'i' signed, 'u' unsigned, 'b' bool, 'c' complex
};
inline constexpr std::array<dtype_info, dtype_count> dtype_table{{
    {DType::f64, 8, "f64", "F64", "<f8", "float64", "DoubleStorage", 'f'},
    {DType::f32, 4, "f32", "F32", "<f4", "float32", "FloatStorage", 'f'},
    {DType::f16, 2, "f16", "F16", "<f2", "float16", "HalfStorage", 'f'},
    {DType::bf16, 2, "bf16", "BF16", "", "bfloat16", "BFloat16Storage", 'f'},
    {DType::f8_e4m3, 1, "f8_e4m3", "F8_E4M3", "", "float8_e4m3fn", "", 'f'},
    {DType::f8_e5m2, 1, "f8_e5m2", "F8_E5M2", "", "float8_e5m2", "", 'f'},
    {DType::i8, 1, "i8", "I8", "|i1", "int8", "CharStorage", 'i'},
    {DType::i16, 2, "i16", "I16", "<i2", "int16", "ShortStorage", 'i'},
    {DType::i32, 4, "i32", "I32", "<i4", "int32", "IntStorage", 'i'},
    {DType::i64, 8, "i64", "I64", "<i8", "int64", "LongStorage", 'i'},
    {DType::u8, 1, "u8", "U8", "|u1", "uint8", "ByteStorage", 'u'},
    {DType::u16, 2, "u16", "U16", "<u2", "uint16", "", 'u'},
    {DType::u32, 4, "u32", "U32", "<u4", "uint32", "", 'u'},
    {DType::u64, 8, "u64", "U64", "<u8", "uint64", "", 'u'},
    {DType::boolean, 1, "bool", "BOOL", "|b1", "bool", "BoolStorage", 'b'},
    {DType::c64, 8, "c64", "C64", "<c8", "complex64", "ComplexFloatStorage", 'c'},
    {DType::c128, 16, "c128", "C128", "<c16", "complex128", "ComplexDoubleStorage", 'c'},
}};
constexpr const dtype_info& info(DType t) { return dtype_table[static_cast<std::size_t>(t)]; }
}  // namespace detail

/// Bytes per element.
constexpr std::size_t element_size(DType t) { return detail::info(t).size; }
/// Our name ("f32"); parses back with dtype_from_name.
constexpr std::string_view name(DType t) { return detail::info(t).name; }
constexpr bool is_floating(DType t) { return detail::info(t).kind == 'f'; }
constexpr bool is_integral(DType t) {
  return detail::info(t).kind == 'i' || detail::info(t).kind == 'u';
}

/// Every dtype, in enum order (for loops and templated tests).
inline constexpr std::array<DType, dtype_count> all_dtypes = [] {
  std::array<DType, dtype_count> a{};
  for (std::size_t i = 0; i < dtype_count; ++i) a[i] = detail::dtype_table[i].type;
  return a;
}();

/// Parse our name ("f32", also "float32"/"bool").
inline std::optional<DType> dtype_from_name(std::string_view s) {
  for (const auto& i : detail::dtype_table)
    if (i.name == s || i.torch == s) return i.type;
  return std::nullopt;
}
/// Parse a safetensors dtype ("F32").
inline std::optional<DType> dtype_from_safetensors(std::string_view s) {
  for (const auto& i : detail::dtype_table)
    if (i.safetensors == s) return i.type;
  return std::nullopt;
}

/// The DType name in a message, or a list of all of them.
inline std::string dtype_names() {
  std::string s;
  for (const auto& i : detail::dtype_table) {
    if (!s.empty()) s += ' ';
    s += i.name;
  }
  return s;
}

// ---- 16-bit and 8-bit float storage types -------------------------------------------------

/// IEEE 754 binary16. Conversion from float rounds to nearest even; to float is exact.
struct float16 {
  std::uint16_t bits = 0;
  float16() = default;
  explicit float16(float f) : bits(from_float(f)) {}
  static float16 from_bits(std::uint16_t b) { float16 h; h.bits = b; return h; }
  explicit operator float() const { return to_float(bits); }
  friend bool operator==(float16 a, float16 b) { return a.bits == b.bits; }

  static std::uint16_t from_float(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const std::uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u)  // inf or nan: keep nan quiet and non-zero
      return static_cast<std::uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u));
    if (abs >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to inf
    if (abs < 0x38800000u) {  // result is subnormal or zero: shift with round-to-nearest-even
      if (abs < 0x33000000u) return static_cast<std::uint16_t>(sign);  // < half of min subnormal
      const std::uint32_t exp = abs >> 23;
      const std::uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
      const std::uint32_t shift = 126u - exp;  // 14..24 (value = mant * 2^(exp-150))
      std::uint32_t r = mant >> shift;
      const std::uint32_t rem = mant & ((1u << shift) - 1u);
      const std::uint32_t half = 1u << (shift - 1u);
      if (rem > half || (rem == half && (r & 1u))) ++r;
      return static_cast<std::uint16_t>(sign | r);
    }
    std::uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
    const std::uint32_t rem = r & 0x1fffu;
    r >>= 13;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
    return static_cast<std::uint16_t>(sign | r);
  }
  static float to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    std::uint32_t mant = h & 0x3ffu;
    std::uint32_t x;
    if (exp == 0x1fu) {
      x = sign | 0x7f800000u | (mant << 13);
    } else if (exp == 0) {
      if (mant == 0) {
        x = sign;
      } else {  // normalise the subnormal
        std::uint32_t e = 113;
        while (!(mant & 0x400u)) { mant <<= 1; --e; }
        x = sign | (e << 23) | ((mant & 0x3ffu) << 13);
      }
    } else {
      x = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    return std::bit_cast<float>(x);
  }
};

/// bfloat16: the top 16 bits of a float. From float rounds to nearest even; to float is exact.
struct bfloat16 {
  std::uint16_t bits = 0;
  bfloat16() = default;
  explicit bfloat16(float f) : bits(from_float(f)) {}
  static bfloat16 from_bits(std::uint16_t b) { bfloat16 h; h.bits = b; return h; }
  explicit operator float() const { return to_float(bits); }
  friend bool operator==(bfloat16 a, bfloat16 b) { return a.bits == b.bits; }

  static std::uint16_t from_float(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
    const std::uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
    return static_cast<std::uint16_t>((x + rounding) >> 16);
  }
  static float to_float(std::uint16_t b) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
  }
};

/// 8-bit float storage (E4M3FN and E5M2, as in the OCP spec / torch). Bits only; to_float exact.
template <int E, int M>
struct float8_bits {
  std::uint8_t bits = 0;
  static float8_bits from_bits(std::uint8_t b) { float8_bits f; f.bits = b; return f; }
  friend bool operator==(float8_bits a, float8_bits b) { return a.bits == b.bits; }
  explicit operator float() const {
    const bool neg = bits & 0x80u;
    const int exp = (bits >> M) & ((1 << E) - 1);
    const int mant = bits & ((1 << M) - 1);
    constexpr int bias = (1 << (E - 1)) - 1;
    float v;
    if constexpr (E == 4) {  // e4m3fn: no inf; S.1111.111 is nan
      if (exp == 15 && mant == 7) return std::bit_cast<float>(0x7fc00000u);
    } else {  // e5m2: IEEE-like
      if (exp == 31) return mant ? std::bit_cast<float>(0x7fc00000u)
                                 : (neg ? -1.0f : 1.0f) * std::bit_cast<float>(0x7f800000u);
    }
    if (exp == 0) v = static_cast<float>(mant) / (1 << M) * std::ldexp(1.0f, 1 - bias);
    else v = (1.0f + static_cast<float>(mant) / (1 << M)) * std::ldexp(1.0f, exp - bias);
    return neg ? -v : v;
  }
};
using float8_e4m3 = float8_bits<4, 3>;
using float8_e5m2 = float8_bits<5, 2>;

// ---- dtype_of<T> ---------------------------------------------------------------------------

namespace detail {
template <class T> struct dtype_of_impl {};
template <> struct dtype_of_impl<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of_impl<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of_impl<float16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of_impl<bfloat16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of_impl<float8_e4m3> { static constexpr DType value = DType::f8_e4m3; };
template <> struct dtype_of_impl<float8_e5m2> { static constexpr DType value = DType::f8_e5m2; };
template <> struct dtype_of_impl<bool> { static constexpr DType value = DType::boolean; };
template <> struct dtype_of_impl<std::complex<float>> { static constexpr DType value = DType::c64; };
template <> struct dtype_of_impl<std::complex<double>> { static constexpr DType value = DType::c128; };
template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
struct dtype_of_impl<T> {
  static constexpr DType value =
      std::is_signed_v<T>
          ? (sizeof(T) == 1 ? DType::i8 : sizeof(T) == 2 ? DType::i16 : sizeof(T) == 4 ? DType::i32 : DType::i64)
          : (sizeof(T) == 1 ? DType::u8 : sizeof(T) == 2 ? DType::u16 : sizeof(T) == 4 ? DType::u32 : DType::u64);
};
}  // namespace detail

/// True for C++ types that are tensor elements (arithmetic, float16, bfloat16, float8, complex).
template <class T>
concept Element = requires { detail::dtype_of_impl<std::remove_cv_t<T>>::value; };

/// The DType of element type T: dtype_of<float> == DType::f32.
template <Element T>
inline constexpr DType dtype_of = detail::dtype_of_impl<std::remove_cv_t<T>>::value;

}  // namespace ckpt
