// ckpt/detail/crc32.hpp — CRC-32 (ISO-HDLC, the zip/zlib/PNG polynomial) over any length,
// using zlib's implementation (which is table-driven and fast enough: see bench/ for figures).
#pragma once

#include <zlib.h>  // crc32, crc32_combine

#include <cstddef>  // std::byte
#include <cstdint>  // std::uint32_t
#include <span>     // input bytes

namespace ckpt::detail {

/// Continue a CRC-32 over `data` (start with crc = 0).
inline std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::byte> data) {
  const auto* p = reinterpret_cast<const Bytef*>(data.data());
  std::size_t left = data.size();
  uLong c = crc;
  while (left) {  // zlib takes uInt lengths: feed at most 1 GiB at a time
    const uInt n = static_cast<uInt>(left < (std::size_t{1} << 30) ? left : (std::size_t{1} << 30));
    c = ::crc32(c, p, n);
    p += n;
    left -= n;
  }
  return static_cast<std::uint32_t>(c);
}
inline std::uint32_t crc32(std::span<const std::byte> data) { return crc32_update(0, data); }

/// "0x1a2b3c4d" for messages.
inline std::string crc_hex(std::uint32_t c) {
  static constexpr char d[] = "0123456789abcdef";
  std::string s = "0x";
  for (int i = 7; i >= 0; --i) s += d[(c >> (4 * i)) & 0xf];
  return s;
}

}  // namespace ckpt::detail
