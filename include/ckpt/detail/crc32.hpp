// ckpt/detail/crc32.hpp — CRC-32 (ISO-HDLC: the zip/zlib/PNG polynomial, reflected 0xEDB88320)
// over any length. On x86-64 CPUs with PCLMULQDQ it folds 64 bytes per step with carry-less
// multiplication (the method of Intel's "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ", bit-reflected constants computed at compile time), and 128 bytes per step with
// 256-bit VPCLMULQDQ where the CPU has it (AVX2; about twice as fast); elsewhere, and for short
// inputs and tails, it uses zlib's crc32. All give identical results (tested).
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

/// Whether readers compare stored checksums with the data: always, except in fuzzing builds
/// (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, as libFuzzer/OSS-Fuzz define it), where a
/// mismatch is ignored so that mutated inputs reach the code behind the checks. Checksums are
/// still computed there, so that code runs too.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
inline constexpr bool enforce_checksums = false;
#else
inline constexpr bool enforce_checksums = true;
#endif

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
/// The folding constants, computed rather than copied: x^n mod P(x), bit-reflected over 32
/// bits and shifted left by one, as the reflected PCLMULQDQ method uses them. Folding a 128-bit
/// lane forward by d bits multiplies its low half by fold_constant(d + 32) and its high half by
/// fold_constant(d - 32).
constexpr std::uint64_t fold_constant(unsigned n) {
  std::uint64_t r = 1;  // x^0, normal bit order, P(x) = x^32 + 0x04C11DB7
  for (unsigned i = 0; i < n; ++i) {
    r <<= 1;
    if (r >> 32) r ^= 0x104C11DB7;
  }
  std::uint64_t reflected = 0;
  for (int b = 0; b < 32; ++b)
    if ((r >> b) & 1) reflected |= std::uint64_t{1} << (31 - b);
  return reflected << 1;
}
// The paper's values for 512- and 128-bit folds: a check on the derivation above.
static_assert(fold_constant(512 + 32) == 0x0154442bd4 && fold_constant(512 - 32) == 0x01c6e41596);
static_assert(fold_constant(128 + 32) == 0x01751997d0 && fold_constant(128 - 32) == 0x00ccaa009e);

/// The two constants that fold a 128-bit lane forward by `d` bits, as one register (low half
/// for the lane's low 64 bits, high half for its high 64 bits).
template <unsigned d>
inline __m128i crc32_fold_k() {  // SSE2: part of x86-64
  constexpr auto lo = static_cast<long long>(fold_constant(d + 32)), hi = static_cast<long long>(fold_constant(d - 32));
  return _mm_set_epi64x(hi, lo);
}

/// acc·x^128 mod P folded onto `next` (k holds the two 128-bit fold constants).
__attribute__((target("pclmul,sse4.1"))) inline __m128i crc32_fold128(__m128i acc, __m128i k, __m128i next) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(acc, k, 0x11), _mm_clmulepi64_si128(acc, k, 0x00)), next);
}

/// Fold the remaining 16-byte blocks into `x1` and reduce it to the 32-bit (pre-inverted)
/// CRC state: 128 -> 64 bits, then Barrett reduction.
__attribute__((target("pclmul,sse4.1"))) inline std::uint32_t crc32_finish(__m128i x1, const std::byte* p, std::size_t n) {
  static constexpr std::uint64_t k5 = fold_constant(64);
  static constexpr std::uint64_t poly = 0x01db710641, mu = 0x01f7011641;  // P(x)' and floor(x^64 / P(x))'
  auto load = [](const std::byte* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };
  __m128i k = crc32_fold_k<128>();
  while (n >= 16) {
    x1 = crc32_fold128(x1, k, load(p));
    p += 16;
    n -= 16;
  }
  // 128 -> 64 bits
  const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
  __m128i x2 = _mm_clmulepi64_si128(x1, k, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
  k = _mm_set_epi64x(0, static_cast<long long>(k5));
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x00), x2);
  // Barrett reduction to 32 bits
  k = _mm_set_epi64x(static_cast<long long>(mu), static_cast<long long>(poly));
  x2 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x10);
  x2 = _mm_clmulepi64_si128(_mm_and_si128(x2, mask32), k, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return static_cast<std::uint32_t>(_mm_extract_epi32(x1, 1));
}

/// Fold `n` bytes (n >= 64, n % 16 == 0) into the pre-inverted CRC state `state`; returns the
/// pre-inverted state (callers apply ~ before and after, as zlib does internally).
__attribute__((target("pclmul,sse4.1"))) inline std::uint32_t crc32_fold_pclmul(std::uint32_t state, const std::byte* p, std::size_t n) {
  auto load = [](const std::byte* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };  // SSE2 only
  __m128i x1 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(state)));
  __m128i x2 = load(p + 16), x3 = load(p + 32), x4 = load(p + 48);
  __m128i k = crc32_fold_k<512>();
  p += 64;
  n -= 64;
  while (n >= 64) {  // four independent lanes, 64 bytes per step
    x1 = crc32_fold128(x1, k, load(p));  // (the 512-bit constants: each lane moves 64 bytes)
    x2 = crc32_fold128(x2, k, load(p + 16));
    x3 = crc32_fold128(x3, k, load(p + 32));
    x4 = crc32_fold128(x4, k, load(p + 48));
    p += 64;
    n -= 64;
  }
  k = crc32_fold_k<128>();
  x1 = crc32_fold128(x1, k, x2);  // four lanes into one
  x1 = crc32_fold128(x1, k, x3);
  x1 = crc32_fold128(x1, k, x4);
  return crc32_finish(x1, p, n);
}

/// Two 128-bit lanes at once: each acc·x^1024 mod P folded onto `next`.
__attribute__((target("avx2,vpclmulqdq"))) inline __m256i crc32_fold256(__m256i acc, __m256i k, const std::byte* next) {
  const __m256i n = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(next));
  return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(acc, k, 0x11), _mm256_clmulepi64_epi128(acc, k, 0x00)), n);
}

/// The same with 256-bit VPCLMULQDQ (AVX2): eight 128-bit lanes in four registers, 128 bytes
/// per step, twice the work per instruction. Requires n >= 128, n % 16 == 0.
__attribute__((target("avx2,vpclmulqdq,pclmul,sse4.1"))) inline std::uint32_t crc32_fold_vpclmul(std::uint32_t state, const std::byte* p, std::size_t n) {
  constexpr auto k1 = static_cast<long long>(fold_constant(1024 + 32)), k2 = static_cast<long long>(fold_constant(1024 - 32));
  const __m256i k = _mm256_set_epi64x(k2, k1, k2, k1);
  const __m256i* in = reinterpret_cast<const __m256i*>(p);
  __m256i y1 = _mm256_xor_si256(_mm256_loadu_si256(in), _mm256_setr_epi32(static_cast<int>(state), 0, 0, 0, 0, 0, 0, 0));
  __m256i y2 = _mm256_loadu_si256(in + 1), y3 = _mm256_loadu_si256(in + 2), y4 = _mm256_loadu_si256(in + 3);
  p += 128;
  n -= 128;
  while (n >= 128) {
    y1 = crc32_fold256(y1, k, p);
    y2 = crc32_fold256(y2, k, p + 32);
    y3 = crc32_fold256(y3, k, p + 64);
    y4 = crc32_fold256(y4, k, p + 96);
    p += 128;
    n -= 128;
  }
  // Eight lanes, in message order, into one.
  const __m128i k128 = crc32_fold_k<128>();
  __m128i x = _mm256_castsi256_si128(y1);
  x = crc32_fold128(x, k128, _mm256_extracti128_si256(y1, 1));
  x = crc32_fold128(x, k128, _mm256_castsi256_si128(y2));
  x = crc32_fold128(x, k128, _mm256_extracti128_si256(y2, 1));
  x = crc32_fold128(x, k128, _mm256_castsi256_si128(y3));
  x = crc32_fold128(x, k128, _mm256_extracti128_si256(y3, 1));
  x = crc32_fold128(x, k128, _mm256_castsi256_si128(y4));
  x = crc32_fold128(x, k128, _mm256_extracti128_si256(y4, 1));
  return crc32_finish(x, p, n);
}

#endif

/// Which implementation crc32_update uses on this CPU.
enum class Crc32Path { zlib, pclmulqdq, vpclmulqdq };
inline Crc32Path crc32_path() {
#ifdef CKPT_CRC32_PCLMUL
  static const Crc32Path path = [] {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("pclmul") || !__builtin_cpu_supports("sse4.1")) return Crc32Path::zlib;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("vpclmulqdq")) return Crc32Path::vpclmulqdq;
    return Crc32Path::pclmulqdq;
  }();
  return path;
#else
  return Crc32Path::zlib;
#endif
}

/// Continue a CRC-32 over `data` with the given implementation (tests compare them).
inline std::uint32_t crc32_update_with(Crc32Path path, std::uint32_t crc, std::span<const std::byte> data) {
  const std::byte* p = data.data();
  std::size_t n = data.size();
#ifdef CKPT_CRC32_PCLMUL
  if (n >= 256 && path != Crc32Path::zlib) {
    const std::size_t body = n & ~std::size_t{15};
    crc = ~(path == Crc32Path::vpclmulqdq ? crc32_fold_vpclmul(~crc, p, body) : crc32_fold_pclmul(~crc, p, body));
    p += body;
    n -= body;
  }
#else
  (void)path;
#endif
  return crc32_zlib(crc, p, n);
}
/// Continue a CRC-32 over `data` (start with crc = 0). Same result as zlib's crc32.
inline std::uint32_t crc32_update(std::uint32_t crc, std::span<const std::byte> data) { return crc32_update_with(crc32_path(), crc, data); }
inline std::uint32_t crc32(std::span<const std::byte> data) { return crc32_update(0, data); }

/// "0x1a2b3c4d" for messages.
inline std::string crc_hex(std::uint32_t c) {
  static constexpr char d[] = "0123456789abcdef";
  std::string s = "0x";
  for (int i = 7; i >= 0; --i) s += d[(c >> (4 * i)) & 0xf];
  return s;
}

}  // namespace ckpt::detail
