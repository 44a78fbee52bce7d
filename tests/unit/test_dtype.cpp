// Unit tests for ckpt/dtype.hpp: names, sizes, dtype_of, and exact 16-bit float conversions.
#include "ckpt_catch.hpp"
#include <ckpt/dtype.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace ckpt;

TEST_CASE("every dtype's names parse back and sizes are right", "[dtype]") {
  for (DType t : all_dtypes) {
    INFO(name(t));
    REQUIRE(dtype_from_name(name(t)) == t);
    REQUIRE(dtype_from_safetensors(detail::info(t).safetensors) == t);
  }
  CHECK(element_size(DType::f64) == 8);
  CHECK(element_size(DType::bf16) == 2);
  CHECK(element_size(DType::f8_e5m2) == 1);
  CHECK(element_size(DType::boolean) == 1);
  CHECK(element_size(DType::c128) == 16);
  CHECK_FALSE(dtype_from_name("float128").has_value());
  CHECK(dtype_from_name("float32") == DType::f32);  // torch spelling too
}

TEST_CASE("dtype_of maps C++ types", "[dtype]") {
  STATIC_REQUIRE(dtype_of<float> == DType::f32);
  STATIC_REQUIRE(dtype_of<double> == DType::f64);
  STATIC_REQUIRE(dtype_of<std::int64_t> == DType::i64);
  STATIC_REQUIRE(dtype_of<std::uint8_t> == DType::u8);
  STATIC_REQUIRE(dtype_of<bool> == DType::boolean);
  STATIC_REQUIRE(dtype_of<bfloat16> == DType::bf16);
  STATIC_REQUIRE(dtype_of<float16> == DType::f16);
  STATIC_REQUIRE(dtype_of<std::complex<float>> == DType::c64);
  STATIC_REQUIRE(!Element<std::string>);
}

namespace {
// Reference: the representable value nearest to x (ties to even mantissa), by exhaustive search
// over the 16-bit patterns of the same sign, comparing exactly in double.
template <class Decode>
std::uint16_t nearest_even(float x, Decode decode) {
  const double dx = x;
  std::uint16_t best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  for (std::uint32_t m = 0; m < 0x8000; ++m) {
    const std::uint16_t b = static_cast<std::uint16_t>(sign | m);
    const float v = decode(b);
    if (!std::isfinite(v)) continue;
    const double err = std::fabs(static_cast<double>(v) - dx);
    if (err < best_err || (err == best_err && (b & 1) == 0)) {
      best = b;
      best_err = err;
    }
  }
  return best;
}
}  // namespace

TEST_CASE("float16 round trips every bit pattern through float exactly", "[dtype][f16]") {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = float16::to_float(h);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(float16::to_float(float16::from_float(f))));
      continue;
    }
    REQUIRE(float16::from_float(f) == h);
  }
  CHECK(float16::to_float(0x3c00) == 1.0f);
  CHECK(float16::to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(float16::to_float(0x7bff) == 65504.0f);
}

TEST_CASE("float16 from float rounds to nearest even (checked against exhaustive search)", "[dtype][f16]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mag(-26.0f, 17.0f);
  for (int i = 0; i < 400; ++i) {
    const float x = (rng() & 1 ? -1.0f : 1.0f) * std::exp2(mag(rng));
    if (std::fabs(x) >= 65520.0f) continue;  // rounds to inf, tested below
    INFO(x);
    REQUIRE(float16::from_float(x) == nearest_even(x, float16::to_float));
  }
  // Exact ties: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 -> even (1.0).
  CHECK(float16::from_float(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
  CHECK(float16::from_float(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(float16::from_float(65520.0f) == 0x7c00);  // halfway to the next binade: inf
  CHECK(float16::from_float(65519.0f) == 0x7bff);
  CHECK(float16::from_float(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(float16::from_float(-0.0f) == 0x8000);
  CHECK(float16::from_float(std::ldexp(1.0f, -25)) == 0x0000);  // tie with 0 -> even
  CHECK(float16::from_float(std::ldexp(1.5f, -25)) == 0x0001);
}

TEST_CASE("bfloat16 rounds to nearest even and widens exactly", "[dtype][bf16]") {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const auto h = static_cast<std::uint16_t>(b);
    const float f = bfloat16::to_float(h);
    if (std::isnan(f)) {
      REQUIRE(std::isnan(bfloat16::to_float(bfloat16::from_float(f))));
      continue;
    }
    REQUIRE(bfloat16::from_float(f) == h);
  }
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> mag(-100.0f, 100.0f);
  for (int i = 0; i < 200; ++i) {
    const float x = (rng() & 1 ? -1.0f : 1.0f) * std::exp2(mag(rng));
    INFO(x);
    REQUIRE(bfloat16::from_float(x) == nearest_even(x, bfloat16::to_float));
  }
  CHECK(bfloat16::from_float(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);  // tie -> even
  CHECK(bfloat16::from_float(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);
}

TEST_CASE("float8 decoding matches the OCP definitions", "[dtype][f8]") {
  CHECK(static_cast<float>(float8_e4m3::from_bits(0x38)) == 1.0f);
  CHECK(static_cast<float>(float8_e4m3::from_bits(0x7e)) == 448.0f);  // max normal
  CHECK(std::isnan(static_cast<float>(float8_e4m3::from_bits(0x7f))));
  CHECK(static_cast<float>(float8_e4m3::from_bits(0x01)) == std::ldexp(1.0f, -9));
  CHECK(static_cast<float>(float8_e5m2::from_bits(0x3c)) == 1.0f);
  CHECK(static_cast<float>(float8_e5m2::from_bits(0x7b)) == 57344.0f);
  CHECK(std::isinf(static_cast<float>(float8_e5m2::from_bits(0x7c))));
  CHECK(static_cast<float>(float8_e5m2::from_bits(0xbc)) == -1.0f);
}
