// The 256 MiB case from the foundation issue: bit-exact through eager and mmap loads, and a
// flipped payload byte deep inside is reported as corrupt_error naming the tensor.
#include <catch2/catch.hpp>
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
