// Unit tests for ckpt/detail/crc32.hpp: the folded (PCLMUL) path gives zlib's CRC-32 for every
// length, alignment and starting value; known check values.
#include <catch2/catch.hpp>
#include <ckpt/detail/crc32.hpp>
#include <random>
#include <string_view>
#include <vector>

using namespace ckpt::detail;

TEST_CASE("crc32 check value and empty input", "[crc32]") {
  const std::string_view s = "123456789";
  CHECK(crc32(std::as_bytes(std::span(s.data(), s.size()))) == 0xCBF43926u);
  CHECK(crc32({}) == 0u);
}

TEST_CASE("crc32 equals zlib for every length, offset and seed", "[crc32]") {
  std::mt19937 g(5);
  std::vector<std::byte> buf(1 << 17);
  for (auto& b : buf) b = std::byte(g() & 0xff);
  for (std::size_t n = 0; n < 1200; ++n) {
    const std::size_t off = n % 61;
    const std::uint32_t seed = n % 3 ? static_cast<std::uint32_t>(g()) : 0u;
    REQUIRE(crc32_update(seed, {buf.data() + off, n}) == crc32_zlib(seed, buf.data() + off, n));
  }
  for (int t = 0; t < 50; ++t) {
    const std::size_t off = g() % 64, n = g() % (buf.size() - 64);
    REQUIRE(crc32_update(0, {buf.data() + off, n}) == crc32_zlib(0, buf.data() + off, n));
  }
  // Chained updates equal one pass.
  const auto whole = crc32(buf);
  std::uint32_t c = 0;
  for (std::size_t i = 0; i < buf.size(); i += 1000) c = crc32_update(c, {buf.data() + i, std::min<std::size_t>(1000, buf.size() - i)});
  CHECK(c == whole);
}
