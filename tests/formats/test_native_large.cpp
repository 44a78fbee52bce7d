// The 256 MiB case from the foundation issue: bit-exact through eager and mmap loads, and a
// flipped payload byte deep inside is reported as corrupt_error naming the tensor.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>

#include "test_util.hpp"

using namespace ckpt;

TEST_CASE("a 256 MiB StateDict round-trips bit-exact, eager and mmap", "[formats][large]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  for (int i = 0; i < 8; ++i) sd["layers"].set(std::to_string(i) + ".weight", ckpt_test::random_tensor(DType::u8, {32 << 20}, 100 + i));
  REQUIRE(sd.tensor_bytes() == (std::uint64_t{256} << 20));
  const auto p = dir / "big.ckpt";
  save(p, sd);
  {
    StateDict eager = load(p);
    REQUIRE(eager == sd);
  }
  {
    LoadOptions m;
    m.mmap = true;
    StateDict mapped = load(p, m);
    REQUIRE(mapped == sd);
  }
  // Flip one byte in the middle of the 6th tensor.
  native::InputArchive ar(p);
  const auto off = ar.offset(5) + (16 << 20);
  {
    io::File f(::open(p.c_str(), O_RDWR), p.string());
    std::byte b;
    f.pread_all({&b, 1}, off);
    b ^= std::byte{0x80};
    REQUIRE(::pwrite(f.fd(), &b, 1, static_cast<off_t>(off)) == 1);
  }
  try {
    load(p);
    FAIL("no corrupt_error");
  } catch (const corrupt_error& e) {
    CHECK(e.key() == "layers.5\\.weight");
  }
  CHECK_THROWS_AS(verify(p), corrupt_error);
}

TEST_CASE("a flipped byte on either side of the split checksum is found by every verified read", "[formats][large]") {
  // Entries of 4 MiB and more are read and checksummed half by this thread, half by the CRC
  // lane (Lane::split); the halves' CRCs are combined. A flip at each edge of each half.
  ckpt_test::TempDir dir;
  const std::size_t n = (std::size_t{9} << 20) + 4097, half = (n / 2) & ~std::size_t{4095};
  StateDict sd;
  sd["w"] = ckpt_test::random_tensor(DType::u8, {static_cast<std::int64_t>(n)}, 7);
  const auto p = dir / "split.ckpt";
  for (const std::size_t at : {std::size_t{0}, half - 1, half, n - 1}) {
    INFO("byte " << at << " of " << n << " flipped (halves meet at " << half << ")");
    save(p, sd);
    REQUIRE(load(p) == sd);
    const auto off = native::InputArchive(p).offset(0) + at;
    {
      io::File f(::open(p.c_str(), O_RDWR), p.string());
      std::byte b;
      f.pread_all({&b, 1}, off);
      b ^= std::byte{0x01};
      REQUIRE(::pwrite(f.fd(), &b, 1, static_cast<off_t>(off)) == 1);
    }
    CHECK_THROWS_AS(load(p), corrupt_error);
    LoadOptions m;
    m.mmap = true;
    m.verify = true;
    CHECK_THROWS_AS(load(p, m), corrupt_error);
    CHECK_THROWS_AS(verify(p), corrupt_error);
    m.verify = false;  // and without verification the flip is simply there
    const StateDict got = load(p, m);
    CHECK(static_cast<std::uint8_t>(got.at(KeyPath{"w"}).tensor().bytes()[at]) == (static_cast<std::uint8_t>(sd.at(KeyPath{"w"}).tensor().bytes()[at]) ^ 1));
  }
}
