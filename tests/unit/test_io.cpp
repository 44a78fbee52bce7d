// Unit tests for ckpt/io: atomic replace (commit, abort, failure keeps the old file and leaves
// no temporary), errno in errors, the write-fault hook, mappings shared by tensors.
#include <catch2/catch.hpp>
#include <ckpt/ckpt.hpp>
#include <ckpt/io/file.hpp>
#include <ckpt/io/mmap.hpp>

#include "test_util.hpp"

using namespace ckpt;

TEST_CASE("AtomicFile: nothing under the final name until commit; abort removes the temp", "[io]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "f.bin";
  {
    io::AtomicFile f(p);
    f.writer().write_string("hello");
    CHECK_FALSE(std::filesystem::exists(p));
    CHECK(std::filesystem::exists(f.temp_path()));
    CHECK(f.temp_path().filename().string().rfind("f.bin.tmp-", 0) == 0);
    f.commit();
  }
  CHECK(ckpt_test::read_bytes(p) == std::vector<char>{'h', 'e', 'l', 'l', 'o'});
  {
    io::AtomicFile f(p);
    f.writer().write_string("partial");
    // destroyed without commit (as during an exception)
  }
  CHECK(ckpt_test::read_bytes(p).size() == 5);
  CHECK(dir.list() == std::vector<std::string>{"f.bin"});
}

TEST_CASE("errors carry the path and the errno text", "[io]") {
  try {
    io::File::open_read("/nonexistent-dir/x.ckpt");
    FAIL();
  } catch (const io_error& e) {
    CHECK(e.code() == ENOENT);
    CHECK(e.path() == "/nonexistent-dir/x.ckpt");
    CHECK(std::string(e.what()) == "ckpt: cannot open for reading in '/nonexistent-dir/x.ckpt': No such file or directory");
  }
  CHECK_THROWS_AS(save("/nonexistent-dir/x.ckpt", StateDict{}), io_error);
}

TEST_CASE("a write fault at byte k fails the save, keeps the previous file, leaves no temp", "[io][fault]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "m.ckpt";
  StateDict v1;
  v1["w"] = ckpt_test::random_tensor(DType::f32, {3 << 20}, 1);  // 12 MiB: several writes
  save(p, v1);
  const auto good = ckpt_test::read_bytes(p);
  StateDict v2;
  v2["w"] = ckpt_test::random_tensor(DType::f32, {3 << 20}, 2);
  for (std::uint64_t k : {0ull, 64ull, 1ull << 20, 12ull << 20}) {
    INFO(k);
    io::write_fault_hook() = [k](const std::string&, std::uint64_t off, std::size_t n) { return (off <= k && k < off + n) ? ENOSPC : 0; };
    try {
      save(p, v2);
      FAIL("save did not fail");
    } catch (const io_error& e) {
      CHECK(e.code() == ENOSPC);
      CHECK(e.path().find("m.ckpt.tmp-") != std::string::npos);
      CHECK(std::string(e.what()).find("No space left on device") != std::string::npos);
    }
    io::write_fault_hook() = nullptr;
    CHECK(dir.list() == std::vector<std::string>{"m.ckpt"});
    CHECK(ckpt_test::read_bytes(p) == good);
    verify(p);
  }
}

TEST_CASE("mapped tensors keep the mapping alive after the reader is gone", "[io][mmap]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["a"] = ckpt_test::random_tensor(DType::f64, {100}, 3);
  save(dir / "a.ckpt", sd);
  LoadOptions o;
  o.mmap = true;
  Tensor t;
  {
    StateDict loaded = load(dir / "a.ckpt", o);
    t = loaded.at("a").tensor();
  }
  CHECK(t.is_view());
  CHECK(t.owner() != nullptr);
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  CHECK(t == sd.at("a").tensor());
  std::filesystem::remove(dir / "a.ckpt");  // the mapping outlives the name
  CHECK(t == sd.at("a").tensor());
}
