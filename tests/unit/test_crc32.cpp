// Unit tests for ckpt/detail/crc32.hpp: the folded (PCLMUL) path gives zlib's CRC-32 for every
// length, alignment and starting value; known check values. CrcLane (detail/crc_lane.hpp):
// checksums computed beside the caller's I/O equal the plain CRC for any chunking.
#include <catch2/catch.hpp>
#include <ckpt/detail/crc32.hpp>
#include <ckpt/detail/crc_lane.hpp>
#include <cstring>
#include <stdexcept>
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

TEST_CASE("CrcLane: over_chunks equals crc32 for any size and chunking, double-buffered too", "[crc32][lane]") {
  std::mt19937 g(11);
  std::vector<std::byte> src((std::size_t{5} << 20) + 123);  // above the inline threshold
  for (auto& b : src) b = std::byte(g() & 0xff);
  CrcLane lane;
  for (const std::size_t total : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, std::size_t{1} << 20, src.size()}) {
    const auto want = crc32({src.data(), total});
    for (const std::size_t chunk : {std::size_t{1} << 12, std::size_t{1} << 20, std::size_t{3} << 20, std::size_t{8} << 20}) {
      INFO(total << " bytes in chunks of " << chunk);
      // In place: chunk k is a slice of the source.
      CHECK(lane.over_chunks(total, chunk, [&](std::uint64_t at, std::size_t n) { return std::span<const std::byte>(src.data() + at, n); }) == want);
      // Two buffers reused in turn, as verify_entry reads: the lane must be done with one before it is refilled.
      std::vector<std::byte> buf(2 * chunk);
      std::size_t k = 0;
      CHECK(lane.over_chunks(total, chunk, [&](std::uint64_t at, std::size_t n) {
        std::byte* dst = buf.data() + (k++ % 2) * chunk;
        std::memcpy(dst, src.data() + at, n);
        return std::span<const std::byte>(dst, n);
      }) == want);
    }
  }
  // start/wait directly, above and below the inline threshold.
  lane.start(0, {src.data(), src.size()});
  CHECK(lane.wait() == crc32(src));
  lane.start(crc32({src.data(), 100}), {src.data() + 100, 10});
  CHECK(lane.wait() == crc32({src.data(), 110}));
}

TEST_CASE("CrcLane: an exception from the fill waits for the job in flight and propagates", "[crc32][lane]") {
  std::vector<std::byte> src(std::size_t{6} << 20, std::byte{7});
  CrcLane lane;
  int calls = 0;
  CHECK_THROWS_AS(lane.over_chunks(src.size(), std::size_t{2} << 20,
                                   [&](std::uint64_t at, std::size_t n) {
                                     if (++calls == 3) throw std::runtime_error("read failed");
                                     return std::span<const std::byte>(src.data() + at, n);
                                   }),
                  std::runtime_error);
  CHECK(calls == 3);
  // The lane is usable afterwards.
  CHECK(lane.over_chunks(src.size(), std::size_t{2} << 20, [&](std::uint64_t at, std::size_t n) { return std::span<const std::byte>(src.data() + at, n); }) == crc32(src));
}
