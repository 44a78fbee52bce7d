// ckpt/detail/endian.hpp — little-endian loads and stores of fixed-width integers, and byte
// swapping of element arrays (for big-endian inputs such as NumPy '>f4' or torch "big").
#pragma once

#include <bit>      // std::endian
#include <cstddef>  // std::byte
#include <cstdint>  // fixed-width integers
#include <cstring>  // std::memcpy
#include <span>     // buffers

namespace ckpt::detail {

static_assert(std::endian::native == std::endian::little, "ckpt currently supports little-endian hosts only");

template <class T>
T load_le(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <class T>
void store_le(std::byte* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}
template <class T>
void append_le(std::vector<std::byte>& out, T v) {
  const auto n = out.size();
  out.resize(n + sizeof(T));
  std::memcpy(out.data() + n, &v, sizeof(T));
}

/// Reverse the bytes of each `elem`-byte element in place.
inline void byteswap_elements(std::span<std::byte> data, std::size_t elem) {
  if (elem <= 1) return;
  for (std::size_t i = 0; i + elem <= data.size(); i += elem)
    for (std::size_t a = 0, b = elem - 1; a < b; ++a, --b) std::swap(data[i + a], data[i + b]);
}

}  // namespace ckpt::detail
