// detail/zip.hpp: round trips (stored, deflated, aligned, data descriptors, zip64 by flag and by
// member count), partial reads, and one hostile archive per rule the reader enforces — built
// byte by byte here, so each test breaks exactly one rule.
#include "ckpt_catch.hpp"
#include <ckpt/detail/zip.hpp>
#include <ckpt/io/memory.hpp>

#include "test_util.hpp"
#include "truncation.hpp"

using namespace ckpt;
using detail::zip::Reader;
using detail::zip::Writer;
namespace fs = std::filesystem;

namespace {
std::vector<std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), reinterpret_cast<const std::byte*>(s.data()) + s.size()};
}
std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = std::byte(x >> 24);
  }
  return v;
}

// Raw archive builder for hostile inputs: each field can be set to anything.
struct RawMember {
  RawMember(std::string n, std::vector<std::byte> d) : name(std::move(n)), data(std::move(d)) {}
  std::string name;
  std::vector<std::byte> data;  // stored as-is
  std::uint16_t method = 0, flags = 0;
  std::optional<std::uint32_t> crc, csize, usize;  // central values (default: the true ones)
  std::optional<std::uint64_t> offset;             // central local-header offset
  std::string local_name;                          // default: name
};
void put16(std::vector<std::byte>& b, std::uint16_t v) { detail::append_le<std::uint16_t>(b, v); }
void put32(std::vector<std::byte>& b, std::uint32_t v) { detail::append_le<std::uint32_t>(b, v); }
std::vector<std::byte> build(const std::vector<RawMember>& ms, std::optional<std::uint16_t> count = std::nullopt) {
  std::vector<std::byte> b;
  std::vector<std::uint64_t> offs;
  for (const auto& m : ms) {
    offs.push_back(b.size());
    const auto crc = detail::crc32(m.data);
    const auto& ln = m.local_name.empty() ? m.name : m.local_name;
    put32(b, detail::zip::local_sig);
    put16(b, 20);
    put16(b, m.flags);
    put16(b, m.method);
    put16(b, 0);
    put16(b, 0x21);
    put32(b, crc);  // the local header always has the true CRC; m.crc changes the central one
    put32(b, m.csize.value_or(static_cast<std::uint32_t>(m.data.size())));
    put32(b, m.usize.value_or(static_cast<std::uint32_t>(m.data.size())));
    put16(b, static_cast<std::uint16_t>(ln.size()));
    put16(b, 0);
    for (char c : ln) b.push_back(std::byte(c));
    b.insert(b.end(), m.data.begin(), m.data.end());
  }
  const auto cd = b.size();
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const auto& m = ms[i];
    put32(b, detail::zip::central_sig);
    put16(b, 20);
    put16(b, 20);
    put16(b, m.flags);
    put16(b, m.method);
    put16(b, 0);
    put16(b, 0x21);
    put32(b, m.crc.value_or(detail::crc32(m.data)));
    put32(b, m.csize.value_or(static_cast<std::uint32_t>(m.data.size())));
    put32(b, m.usize.value_or(static_cast<std::uint32_t>(m.data.size())));
    put16(b, static_cast<std::uint16_t>(m.name.size()));
    put16(b, 0);
    put16(b, 0);
    put16(b, 0);
    put16(b, 0);
    put32(b, 0);
    put32(b, static_cast<std::uint32_t>(m.offset.value_or(offs[i])));
    for (char c : m.name) b.push_back(std::byte(c));
  }
  const auto cd_size = b.size() - cd;
  put32(b, detail::zip::eocd_sig);
  put16(b, 0);
  put16(b, 0);
  put16(b, count.value_or(static_cast<std::uint16_t>(ms.size())));
  put16(b, count.value_or(static_cast<std::uint16_t>(ms.size())));
  put32(b, static_cast<std::uint32_t>(cd_size));
  put32(b, static_cast<std::uint32_t>(cd));
  put16(b, 0);
  return b;
}
void write_file(const fs::path& p, const std::vector<std::byte>& b) {
  ckpt_test::write_bytes(p, std::vector<char>(reinterpret_cast<const char*>(b.data()), reinterpret_cast<const char*>(b.data()) + b.size()));
}
template <class F>
void write_zip(const fs::path& p, F&& fill, bool zip64 = false) {
  io::AtomicFile f(p, false);
  Writer w(f.writer());
  w.force_zip64(zip64);
  fill(w);
  w.finish();
  f.commit();
}
}  // namespace

TEST_CASE("zip: stored, deflated and aligned members round-trip", "[zip]") {
  ckpt_test::TempDir dir;
  const auto big = pattern(300000, 1);
  std::vector<std::byte> zeros(1 << 20);
  const auto head = bytes_of("header|"), tail = pattern(1000, 2);
  for (bool zip64 : {false, true}) {
    INFO("zip64 " << zip64);
    const auto p = dir / (zip64 ? "z64.zip" : "z.zip");
    write_zip(p, [&](Writer& w) {
      w.add("stored.bin", big);
      w.add("deflated.bin", big, true, 0, 9);
      w.add("zeros.bin", zeros, true, 0, 1);
      w.add("empty", {});
      w.add("empty_deflated", {}, true);
      w.add("dir/aligned64", big, false, 64);
      w.add("dir/aligned4096", tail, false, 4096);
      w.add_parts("parts", {head, tail}, true);
      w.add("caf\xc3\xa9.txt", head);  // UTF-8 name
    }, zip64);
    Reader r(p);
    REQUIRE(r.entries().size() == 9);
    CHECK(r.read(*r.find("stored.bin")) == big);
    CHECK(r.find("stored.bin")->method == 0);
    CHECK(r.read(*r.find("deflated.bin")) == big);
    CHECK(r.find("deflated.bin")->method == 8);
    CHECK(r.read(*r.find("zeros.bin")) == zeros);
    CHECK(r.find("zeros.bin")->compressed_size < 10000);  // 1 MiB of zeros deflates to ~1 KiB
    CHECK(r.read(*r.find("empty")).empty());
    CHECK(r.read(*r.find("empty_deflated")).empty());
    CHECK(r.find("dir/aligned64")->data_offset % 64 == 0);
    CHECK(r.find("dir/aligned4096")->data_offset % 4096 == 0);
    CHECK(r.read(*r.find("dir/aligned4096")) == tail);
    std::vector<std::byte> joined = head;
    joined.insert(joined.end(), tail.begin(), tail.end());
    CHECK(r.read(*r.find("parts")) == joined);
    CHECK(r.find("caf\xc3\xa9.txt") != nullptr);
    CHECK(r.find("missing") == nullptr);
    // Entries keep write order.
    CHECK(r.entries().front().name == "stored.bin");
    CHECK(r.entries().back().name == "caf\xc3\xa9.txt");
  }
  // Forced zip64 writes the zip64 end records; the plain archive has none.
  auto has_z64 = [](const fs::path& p) {
    const auto b = ckpt_test::read_bytes(p);
    const std::string sig = "PK\x06\x06";
    return std::search(b.begin(), b.end(), sig.begin(), sig.end()) != b.end();
  };
  CHECK(has_z64(dir / "z64.zip"));
  CHECK_FALSE(has_z64(dir / "z.zip"));
}

TEST_CASE("zip: partial reads decode only what they need, and verify when asked", "[zip]") {
  ckpt_test::TempDir dir;
  const auto data = pattern(700000, 3);
  write_zip(dir / "r.zip", [&](Writer& w) {
    w.add("s", data);
    w.add("d", data, true);
  });
  Reader r(dir / "r.zip");
  for (const char* name : {"s", "d"}) {
    INFO(name);
    const auto& e = *r.find(name);
    for (std::uint64_t off : {0ull, 1ull, 262143ull, 262144ull, 699990ull}) {
      std::vector<std::byte> part(std::min<std::uint64_t>(10, data.size() - off));
      r.read_range(e, off, part, true);
      CHECK(std::equal(part.begin(), part.end(), data.begin() + static_cast<std::ptrdiff_t>(off)));
      r.read_range(e, off, part, false);
      CHECK(std::equal(part.begin(), part.end(), data.begin() + static_cast<std::ptrdiff_t>(off)));
    }
    CHECK(r.read_prefix(e, 100) == std::vector<std::byte>(data.begin(), data.begin() + 100));
    std::vector<std::byte> past(11);
    CHECK_THROWS_AS(r.read_range(e, data.size() - 10, past), format_error);
    std::vector<std::byte> wrong(5);
    CHECK_THROWS_AS(r.read_into(e, wrong), mismatch_error);
  }
}

TEST_CASE("zip: more than 65535 members switch to zip64 and read back", "[zip][zip64]") {
  ckpt_test::TempDir dir;
  const std::size_t n = 70000;
  write_zip(dir / "many.zip", [&](Writer& w) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto s = std::to_string(i);
      w.add("m" + s, bytes_of(s));
    }
  });
  Reader r(dir / "many.zip");
  REQUIRE(r.entries().size() == n);
  for (std::size_t i : {std::size_t{0}, std::size_t{65534}, std::size_t{65535}, std::size_t{65536}, n - 1}) {
    const auto s = std::to_string(i);
    CHECK(r.read(*r.find("m" + s)) == bytes_of(s));
  }
}

TEST_CASE("zip: a changed byte is caught by the CRC-32", "[zip][bad]") {
  ckpt_test::TempDir dir;
  const auto data = pattern(5000, 4);
  write_zip(dir / "c.zip", [&](Writer& w) {
    w.add("s", data);
    w.add("d", data, true);
  });
  const auto orig = ckpt_test::read_bytes(dir / "c.zip");
  Reader clean(dir / "c.zip");
  const auto s_off = clean.find("s")->data_offset, d_off = clean.find("d")->data_offset;
  auto flip = [&](std::uint64_t at) {
    auto b = orig;
    b[at] ^= 0x20;
    ckpt_test::write_bytes(dir / "c.zip", b);
  };
  flip(s_off + 100);
  {
    Reader r(dir / "c.zip");
    try {
      r.read(*r.find("s"));
      FAIL("no error");
    } catch (const corrupt_error& e) {
      CHECK(e.key() == "s");
      CHECK(e.path() == (dir / "c.zip").string());
    }
    std::vector<std::byte> part(10);
    CHECK_NOTHROW(r.read_range(*r.find("s"), 0, part, false));  // unverified partial read
    CHECK_THROWS_AS(r.read_range(*r.find("s"), 0, part, true), corrupt_error);
    CHECK(r.read(*r.find("d")) == data);
  }
  flip(d_off + 100);  // inside a deflate stream: a broken stream or a CRC mismatch
  Reader r(dir / "c.zip");
  CHECK_THROWS_AS(r.read(*r.find("d")), ckpt::error);
  try {
    r.read(*r.find("d"));
  } catch (const corrupt_error&) {
    SUCCEED();
  } catch (const format_error&) {
    SUCCEED();
  }
}

TEST_CASE("zip: truncation at every length is a format_error with the offset", "[zip][bad]") {
  ckpt_test::TempDir dir;
  write_zip(dir / "t.zip", [&](Writer& w) {
    w.add("a", pattern(100, 5));
    w.add("b", pattern(100, 6), true);
  });
  ckpt_test::require_truncations_fail(ckpt_test::read_bytes(dir / "t.zip"), dir / "cut.zip", [](const auto& q) { return Reader(q); });
}

TEST_CASE("zip: hostile archives break one rule each and raise the specific error", "[zip][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "h.zip";
  const auto d4 = bytes_of("data"), d8 = bytes_of("datadata");
  auto expect_format = [&](const std::vector<RawMember>& ms, const char* fragment, std::optional<std::uint16_t> count = std::nullopt) {
    write_file(p, build(ms, count));
    try {
      Reader r(p);
      FAIL("no error for " << fragment);
    } catch (const format_error& e) {
      CHECK_THAT(e.what(), ckpt_test::Contains(fragment));
      CHECK(e.path() == p.string());
    }
  };
  // The builder itself makes valid archives.
  write_file(p, build({{"a", d4}, {"b", d8}}));
  CHECK(Reader(p).read(*Reader(p).find("b")) == d8);

  expect_format({{"../evil", d4}}, "unsafe member name ('..' component)");
  expect_format({{"a/../../evil", d4}}, "'..' component");
  expect_format({{"/etc/passwd", d4}}, "absolute path");
  expect_format({{"C:\\x", d4}}, "drive letter");
  expect_format({{"a", d4}, {"a", d4}}, "duplicate member name");
  RawMember over{"b", d4};
  over.offset = 0;  // b's central entry points at a's local header
  over.local_name = "a";
  expect_format({{"a", d4}, over}, "local header name differs");
  RawMember past{"a", d4};
  past.offset = 1u << 30;
  expect_format({past}, "local header out of range");
  RawMember big{"a", d4};
  big.csize = 1u << 30;
  big.usize = 1u << 30;
  expect_format({big}, "member data out of range");
  RawMember lie{"a", d4};
  lie.crc = 1234;
  expect_format({lie}, "local header differs from the central directory");
  RawMember bomb{"a", d4};
  bomb.method = 8;
  bomb.usize = 1u << 30;
  expect_format({bomb}, "impossible for deflate");
  RawMember mism{"a", d8};
  mism.usize = 4;
  expect_format({mism}, "stored member with different compressed and uncompressed sizes");
  expect_format({{"a", d4}}, "more members declared than the central directory can hold", std::uint16_t{40});
  // A member whose data holds another member's local header: the two overlap.
  std::vector<std::byte> inner = build({{"b", d4}});
  inner.resize(30 + 1 + 4);  // local header of "b" and its data only
  RawMember outer{"a", inner};
  RawMember b{"b", d4};
  b.offset = 30 + 1;  // inside a's data
  expect_format({outer, b}, "overlaps");
  write_file(p, bytes_of("PK\x05\x06 this is not the end"));
  CHECK_THROWS_AS(Reader(p), format_error);

  // Unsupported rather than malformed: encryption, other methods.
  RawMember enc{"a", d4};
  enc.flags = 1;
  write_file(p, build({enc}));
  CHECK_THROWS_AS(Reader(p), unsupported_error);
  RawMember bz{"a", d4};
  bz.method = 12;
  write_file(p, build({bz}));
  CHECK_THROWS_AS(Reader(p), unsupported_error);
}

TEST_CASE("zip: the writer refuses unsafe and duplicate names", "[zip][bad]") {
  io::MemoryWriter out;
  Writer w(out);
  const auto d = bytes_of("x");
  CHECK_THROWS_AS(w.add("../x", d), unsupported_error);
  CHECK_THROWS_AS(w.add("/x", d), unsupported_error);
  CHECK_THROWS_AS(w.add("", d), unsupported_error);
  w.add("x", d);
  CHECK_THROWS_AS(w.add("x", d), unsupported_error);
  w.finish();
  CHECK_THROWS_AS(w.add("y", d), unsupported_error);
}

// Hidden from the default run ([.]); ctest runs it as formats.zip.large with label "long".
// Writes a 4.06 GiB member and a member past the 4 GiB offset, reading both back (streaming).
TEST_CASE("zip: a member over 4 GiB and offsets past 4 GiB use zip64", "[.][long][zip64]") {
  ckpt_test::TempDir dir;
  const auto chunk = pattern(std::size_t{64} << 20, 7);
  const std::vector<std::span<const std::byte>> parts(65, chunk);  // 65 × 64 MiB = 4160 MiB
  write_zip(dir / "big.zip", [&](Writer& w) {
    w.add_parts("big", parts);
    w.add("after", bytes_of("tail"));
  });
  Reader r(dir / "big.zip");
  const auto& big = *r.find("big");
  CHECK(big.uncompressed_size == std::uint64_t{65} << 26);
  CHECK(r.find("after")->local_header_offset > 0xffffffffu);
  CHECK(r.read(*r.find("after")) == bytes_of("tail"));
  std::vector<std::byte> last(1000);
  r.read_range(big, big.uncompressed_size - last.size(), last, true);  // CRC over all 4 GiB
  CHECK(std::equal(last.begin(), last.end(), chunk.end() - 1000));
}
