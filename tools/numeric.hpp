// tools/numeric.hpp — element access for `ckpt stats` and `ckpt diff`: dispatch on a DType to
// the C++ element type, and conversion of any element (16-bit and 8-bit floats, integers,
// bool, complex) to double (real and imaginary parts).
#pragma once

#include <complex>      // c64 / c128 elements
#include <cstddef>      // std::byte
#include <cstring>      // std::memcpy (elements may sit at any offset)
#include <type_traits>  // element kinds

#include <ckpt/dtype.hpp>  // DType, float16, bfloat16, float8

namespace ckpt_cli {

template <class T>
struct type_tag {
  using type = T;
};

/// Call fn(type_tag<T>{}) with the element type of `d`.
template <class Fn>
decltype(auto) dispatch(ckpt::DType d, Fn&& fn) {
  using ckpt::DType;
  switch (d) {
    case DType::f64: return fn(type_tag<double>{});
    case DType::f32: return fn(type_tag<float>{});
    case DType::f16: return fn(type_tag<ckpt::float16>{});
    case DType::bf16: return fn(type_tag<ckpt::bfloat16>{});
    case DType::f8_e4m3: return fn(type_tag<ckpt::float8_e4m3>{});
    case DType::f8_e5m2: return fn(type_tag<ckpt::float8_e5m2>{});
    case DType::i8: return fn(type_tag<std::int8_t>{});
    case DType::i16: return fn(type_tag<std::int16_t>{});
    case DType::i32: return fn(type_tag<std::int32_t>{});
    case DType::i64: return fn(type_tag<std::int64_t>{});
    case DType::u8: return fn(type_tag<std::uint8_t>{});
    case DType::u16: return fn(type_tag<std::uint16_t>{});
    case DType::u32: return fn(type_tag<std::uint32_t>{});
    case DType::u64: return fn(type_tag<std::uint64_t>{});
    case DType::boolean: return fn(type_tag<bool>{});
    case DType::c64: return fn(type_tag<std::complex<float>>{});
    case DType::c128: return fn(type_tag<std::complex<double>>{});
  }
  return fn(type_tag<std::uint8_t>{});  // unreachable for valid enums
}

template <class T>
inline constexpr bool is_complex_v = std::is_same_v<T, std::complex<float>> || std::is_same_v<T, std::complex<double>>;

/// Element i of `data` (read with memcpy: no alignment assumed).
template <class T>
T load_element(const std::byte* data, std::size_t i) {
  if constexpr (std::is_same_v<T, bool>) {  // any nonzero byte is true (never load a bool from raw bytes)
    return std::to_integer<unsigned>(data[i]) != 0;
  }
  T v;
  std::memcpy(static_cast<void*>(&v), data + i * sizeof(T), sizeof(T));
  return v;
}

/// The real part of an element as double (bool: 0 or 1).
template <class T>
double real_part(const T& v) {
  if constexpr (is_complex_v<T>) return static_cast<double>(v.real());
  else if constexpr (std::is_same_v<T, bool>) return v ? 1.0 : 0.0;
  else if constexpr (std::is_arithmetic_v<T>) return static_cast<double>(v);
  else return static_cast<double>(static_cast<float>(v));  // float16, bfloat16, float8
}
template <class T>
double imag_part(const T& v) {
  if constexpr (is_complex_v<T>) return static_cast<double>(v.imag());
  else return 0.0;
}

/// Elements [first, first + n) of a tensor of dtype `d` as doubles (im: 0 for real dtypes).
inline void to_doubles(ckpt::DType d, const std::byte* data, std::size_t first, std::size_t n, double* re, double* im) {
  dispatch(d, [&]<class T>(type_tag<T>) {
    for (std::size_t k = 0; k < n; ++k) {
      const T v = load_element<T>(data, first + k);
      re[k] = real_part(v);
      im[k] = imag_part(v);
    }
  });
}

}  // namespace ckpt_cli
