// Unit tests for ckpt/detail/crc32.hpp: every implementation (PCLMULQDQ, VPCLMULQDQ, zlib) gives
// zlib's CRC-32 for every length, alignment and starting value; known check values. Lane
// (detail/lane.hpp): checksums computed beside the caller's I/O, or split between the
// caller and the lane, equal the plain CRC; exceptions from either side arrive.
#include "ckpt_catch.hpp"
#include <ckpt/detail/crc32.hpp>
#include <ckpt/detail/lane.hpp>
#include <cstring>
#include <stdexcept>
#include <random>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
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

TEST_CASE("crc32: each folding implementation the CPU has equals zlib", "[crc32]") {
  std::mt19937 g(9);
  std::vector<std::byte> buf(1 << 16);
  for (auto& b : buf) b = std::byte(g() & 0xff);
  std::vector<Crc32Path> paths = {Crc32Path::zlib};
  if (crc32_path() != Crc32Path::zlib) paths.push_back(Crc32Path::pclmulqdq);  // a CPU with VPCLMULQDQ has PCLMULQDQ too
  if (crc32_path() == Crc32Path::vpclmulqdq) paths.push_back(Crc32Path::vpclmulqdq);
  WARN("crc32 implementations tested on this CPU: " << paths.size() << " (3 = zlib, PCLMULQDQ and VPCLMULQDQ)");
  for (const auto path : paths)
    for (std::size_t n = 0; n < 2100; n += (n < 600 ? 1 : 7))  // every length through the 128/256-byte thresholds
      for (const std::size_t off : {0, 1, 17, 31}) {
        const auto seed = static_cast<std::uint32_t>(n * 2654435761u);
        INFO("path " << static_cast<int>(path) << ", " << n << " bytes at offset " << off);
        REQUIRE(crc32_update_with(path, seed, {buf.data() + off, n}) == crc32_zlib(seed, buf.data() + off, n));
      }
  for (const auto path : paths) CHECK(crc32_update_with(path, 0, buf) == crc32_zlib(0, buf.data(), buf.size()));
}

TEST_CASE("Lane: start/wait equals crc32, above and below the inline threshold", "[crc32][lane]") {
  std::mt19937 g(11);
  std::vector<std::byte> src((std::size_t{5} << 20) + 123);
  for (auto& b : src) b = std::byte(g() & 0xff);
  Lane lane;
  lane.start(0, {src.data(), src.size()});
  CHECK(lane.wait() == crc32(src));
  lane.start(crc32({src.data(), 100}), {src.data() + 100, 10});
  CHECK(lane.wait() == crc32({src.data(), 110}));
}

TEST_CASE("Lane: split equals crc32 for any size, in place and with a buffer per side", "[crc32][lane]") {
  std::mt19937 g(13);
  std::vector<std::byte> src((std::size_t{9} << 20) + 123);
  for (auto& b : src) b = std::byte(g() & 0xff);
  Lane lane;
  for (const std::size_t total : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, Lane::piece_bytes + 1, Lane::min_split_bytes - 1,
                                  Lane::min_split_bytes, Lane::min_split_bytes + 4097, src.size()}) {
    INFO(total << " bytes");
    const auto want = crc32({src.data(), total});
    std::mutex m;
    std::set<int> sides;
    std::set<std::thread::id> threads;
    std::uint64_t covered = 0;
    CHECK(lane.split(total, [&](int side, std::uint64_t at, std::size_t n) {
      std::lock_guard lk(m);
      sides.insert(side);
      threads.insert(std::this_thread::get_id());
      covered += n;
      CHECK(n <= Lane::piece_bytes);
      return std::span<const std::byte>(src.data() + at, n);
    }) == want);
    CHECK(covered == total);
    // Large entries are shared with the lane (where there is a second CPU); small ones are not.
    const bool shared = total >= Lane::min_split_bytes && std::thread::hardware_concurrency() > 1;
    CHECK(sides.size() == (shared ? 2u : total ? 1u : 0u));
    CHECK(threads.size() == sides.size());
    // split_fill: the same division without checksums; every byte is filled exactly once.
    std::vector<std::uint8_t> hits(total);
    lane.split_fill(total, [&](int, std::uint64_t at, std::size_t n) {
      for (std::size_t k = 0; k < n; ++k) ++hits[static_cast<std::size_t>(at) + k];  // sides own disjoint ranges
      return std::span<const std::byte>(src.data() + at, n);
    });
    CHECK(std::count(hits.begin(), hits.end(), std::uint8_t{1}) == static_cast<std::ptrdiff_t>(total));
    // Each side copies into its own buffer, as verify_entry reads.
    std::vector<std::byte> buf(2 * Lane::piece_bytes);
    CHECK(lane.split(total, [&](int side, std::uint64_t at, std::size_t n) {
      std::byte* dst = buf.data() + static_cast<std::size_t>(side) * Lane::piece_bytes;
      std::memcpy(dst, src.data() + at, n);
      return std::span<const std::byte>(dst, n);
    }) == want);
  }
}

TEST_CASE("Lane: an exception on either side of a split arrives after both sides stopped", "[crc32][lane]") {
  std::vector<std::byte> src(std::size_t{8} << 20, std::byte{7});
  Lane lane;
  for (const int failing : {0, 1}) {
    INFO("side " << failing << " throws");
    std::atomic<int> calls_after{0};
    std::atomic<bool> thrown{false};
    const auto fill = [&](int side, std::uint64_t at, std::size_t n) {
      if (thrown) ++calls_after;
      if (side == failing && at >= src.size() / 2 - (side ? 0 : Lane::piece_bytes) && !thrown.exchange(true)) throw std::runtime_error("read failed");
      return std::span<const std::byte>(src.data() + at, n);
    };
    if (std::thread::hardware_concurrency() < 2 && failing == 1) continue;  // no lane: nothing runs as side 1
    CHECK_THROWS_WITH(lane.split(src.size(), fill), "read failed");
    const int after = calls_after;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(calls_after == after);  // nothing still running once split returned
  }
  // The lane is usable afterwards.
  CHECK(lane.split(src.size(), [&](int, std::uint64_t at, std::size_t n) { return std::span<const std::byte>(src.data() + at, n); }) == crc32(src));
}
