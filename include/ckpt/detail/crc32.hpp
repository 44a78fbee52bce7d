// ckpt/detail/crc32.hpp — CRC-32 (ISO-HDLC: the zip/zlib/PNG polynomial, reflected 0xEDB88320)
// over any length. On x86-64 CPUs with PCLMULQDQ it folds 64 bytes per step with carry-less
// multiplication (the method of Intel's "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ", with that paper's bit-reflected constants for this polynomial); elsewhere, and
// for short inputs and tails, it uses zlib's crc32. Both give identical results (tested).
#pragma once

#include <zlib.h>  // crc32: the portable path and short tails

#include <cstddef>  // std::byte
#include <cstdint>  // std::uint32_t
#include <span>     // input bytes
#include <string>   // crc_hex

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>  // _mm_clmulepi64_si128 and friends
#define CKPT_CRC32_PCLMUL 1
#endif

namespace ckpt::detail {

inline std::uint32_t crc32_zlib(std::uint32_t crc, const std::byte* p, std::size_t n) {
  uLong c = crc;
  while (n) {  // zlib takes uInt lengths: feed at most 1 GiB at a time
    const uInt k = static_cast<uInt>(n < (std::size_t{1} << 30) ? n : (std::size_t{1} << 30));
    c = ::crc32(c, reinterpret_cast<const Bytef*>(p), k);
    p += k;
    n -= k;
  }
  return static_cast<std::uint32_t>(c);
}

#ifdef CKPT_CRC32_PCLMUL
/// acc·x^128 mod P folded onto `next` (k holds the two 128-bit fold constants).
__attribute__((target("pclmul,sse4.1"))) inline __m128i crc32_fold128(__m128i acc, __m128i k, __m128i next) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(acc, k, 0x11), _mm_clmulepi64_si128(acc, k, 0x00)), next);
}

/// Fold `n` bytes (n >= 64, n % 16 == 0) into the pre-inverted CRC state `state`; returns the
/// pre-inverted state (callers apply ~ before and after, as zlib does internally).
__attribute__((target("pclmul,sse4.1"))) inline std::uint32_t crc32_fold_pclmul(std::uint32_t state, const std::byte* p, std::size_t n) {
  alignas(16) static const std::uint64_t k1k2[2] = {0x0154442bd4, 0x01c6e41596};  // fold by 512 bits
  alignas(16) static const std::uint64_t k3k4[2] = {0x01751997d0, 0x00ccaa009e};  // fold by 128 bits
  alignas(16) static const std::uint64_t k5k0[2] = {0x0163cd6124, 0x0000000000};  // 64 -> 32 bits
  alignas(16) static const std::uint64_t poly[2] = {0x01db710641, 0x01f7011641};  // P(x)' and mu'
  auto load = [](const std::byte* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };  // SSE2 only

  __m128i x1 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(state)));
  __m128i x2 = load(p + 16), x3 = load(p + 32), x4 = load(p + 48);
  __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(k1k2));
  p += 64;
  n -= 64;
  while (n >= 64) {  // four independent lanes, 64 bytes per step
    const __m128i l1 = _mm_clmulepi64_si128(x1, k, 0x00), l2 = _mm_clmulepi64_si128(x2, k, 0x00);
    const __m128i l3 = _mm_clmulepi64_si128(x3, k, 0x00), l4 = _mm_clmulepi64_si128(x4, k, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k, 0x11), l1), load(p));
    x2 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x2, k, 0x11), l2), load(p + 16));
    x3 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x3, k, 0x11), l3), load(p + 32));
    x4 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x4, k, 0x11), l4), load(p + 48));
    p += 64;
    n -= 64;
  }
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(k3k4));
  x1 = crc32_fold128(x1, k, x2);  // four lanes into one
  x1 = crc32_fold128(x1, k, x3);
  x1 = crc32_fold128(x1, k, x4);
  while (n >= 16) {
    x1 = crc32_fold128(x1, k, load(p));
    p += 16;
    n -= 16;
  }
  // 128 -> 64 bits
  const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
  x2 = _mm_clmulepi64_si128(x1, k, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
  k = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(k5k0));
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x00), x2);
  // Barrett reduction to 32 bits
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(poly));
  x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x10);
  x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, mask32), k, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return static_cast<std::uint32_t>(_mm_extract_epi32(x1, 1));
}

inline bool cpu_has_pclmul() {
  static const bool has = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  return has;
}
#endif

/// Continue a CRC-32 over `data` (start with crc = 0). Same result as zlib's crc32.
inline std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::byte> data) {
  const std::byte* p = data.data();
  std::size_t n = data.size();
#ifdef CKPT_CRC32_PCLMUL
  if (n >= 256 && cpu_has_pclmul()) {
    const std::size_t body = n & ~std::size_t{15};
    crc = ~crc32_fold_pclmul(~crc, p, body);
    p += body;
    n -= body;
  }
#endif
  return crc32_zlib(crc, p, n);
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
