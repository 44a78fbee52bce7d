// Unit tests for ckpt/io: atomic replace (commit, abort, failure keeps the old file and leaves
// no temporary), errno in errors, the write-fault hook, mappings shared by tensors, durable
// writers' writeback pieces, dropping a replaced file's page cache.
#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <ckpt/io/file.hpp>
#include <ckpt/io/mmap.hpp>

#include "test_util.hpp"

using namespace ckpt;
namespace fs = std::filesystem;

TEST_CASE("AtomicFile: nothing under the final name until commit, abort removes the temp", "[io]") {
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

TEST_CASE("a directory where a file is expected is io_error EISDIR, for every reader", "[io]") {
  // Not a format error judged from the directory's st_size (0 on btrfs: "too short", "unknown
  // format"): the manager treats io_error as transient and format errors as corruption.
  ckpt_test::TempDir dir;
  const auto d = dir / "ckpt-1.ckpt";
  std::filesystem::create_directory(d);
  try {
    io::File::open_read(d);
    FAIL("a directory opened for reading");
  } catch (const io_error& e) {
    CHECK(e.code() == EISDIR);
    CHECK(e.path() == d.string());
  }
  for (const char* name : {"a.ckpt", "a.json", "a.safetensors", "a.npz", "a.pt", "a.npy"}) {
    std::filesystem::create_directory(dir / name);
    INFO(name);
    try {
      (void)load(dir / name);
      FAIL("loaded a directory");
    } catch (const io_error& e) {
      CHECK(e.code() == EISDIR);
    }
  }
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

using ckpt_test::resident_pages;

TEST_CASE("durable writers hand large data to write(2) in writeback-sized pieces, the bytes are the same", "[io]") {
  ckpt_test::TempDir dir;
  std::vector<std::byte> data((std::size_t{10} << 20) + 3);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = std::byte(i * 131 % 251);
  std::vector<std::size_t> sizes;
  io::write_fault_hook() = [&](const std::string&, std::uint64_t, std::size_t n) {
    sizes.push_back(n);
    return 0;
  };
  {
    io::File f = io::File::create_exclusive(dir / "a.bin");
    io::FileWriter w(f, std::size_t{1} << 20, std::size_t{4} << 20);
    w.write_string("head");
    w.write(data);
    w.flush();
  }
  io::write_fault_hook() = nullptr;
  // The buffered 4-byte head, then the data in 4 MiB pieces.
  CHECK(sizes == std::vector<std::size_t>{4, std::size_t{4} << 20, std::size_t{4} << 20, (std::size_t{2} << 20) + 3});
  const auto back = io::read_file(dir / "a.bin");
  REQUIRE(back.size() == data.size() + 4);
  CHECK(std::equal(data.begin(), data.end(), back.begin() + 4));
  // AtomicFile's policy: pieces when the save is durable or replaces a file (ext4 would write
  // the whole new file back inside rename()), one write(2) per tensor otherwise.
  StateDict big;
  big["w"] = ckpt_test::random_tensor(DType::u8, {int64_t{40} << 20}, 4);
  auto largest_write = [&](const fs::path& p, bool fsync) {
    std::size_t largest = 0;
    io::write_fault_hook() = [&](const std::string&, std::uint64_t, std::size_t n) {
      largest = std::max(largest, n);
      return 0;
    };
    SaveOptions o;
    o.fsync = fsync;
    save(p, big, o);
    io::write_fault_hook() = nullptr;
    return largest;
  };
  CHECK(largest_write(dir / "new.ckpt", false) == std::size_t{40} << 20);
  CHECK(largest_write(dir / "new.ckpt", false) == io::writeback_bytes);  // now replacing
  CHECK(largest_write(dir / "durable.ckpt", true) == io::writeback_bytes);
  CHECK(load(dir / "new.ckpt") == big);
  // Through a durable save too (AtomicFile), and the checkpoint loads.
  StateDict sd;
  sd["w"] = ckpt_test::random_tensor(DType::f32, {int64_t{9} << 20}, 3);
  save(dir / "s.ckpt", sd);
  CHECK(load(dir / "s.ckpt") == sd);
}

TEST_CASE("a save over an existing file first drops that file's page cache, and leaves it intact until the rename", "[io]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "c.ckpt";
  StateDict a, b;
  a["w"] = ckpt_test::random_tensor(DType::u8, {int64_t{8} << 20}, 1);
  b["w"] = ckpt_test::random_tensor(DType::u8, {int64_t{8} << 20}, 2);
  save(p, a);
  const auto old_bytes = io::read_file(p);  // now cached
  const std::size_t before = resident_pages(p);
  INFO("resident pages before: " << before);
  {
    io::AtomicFile f(p);  // the constructor drops the old file's cached pages
    const std::size_t after = resident_pages(p);  // (mincore does not read pages in)
    if (!ckpt_test::dontneed_drops_pages(dir.path())) {  // a control file decides
      WARN("this filesystem keeps pages on POSIX_FADV_DONTNEED (tmpfs?): the drop is not observable here");
    } else {
      CHECK(before > 0);
      CHECK(after < before / 4);
    }
    CHECK(io::read_file(p) == old_bytes);  // untouched (read back from disk)
    // No commit: the previous file remains as it was.
  }
  CHECK(io::read_file(p) == old_bytes);
  save(p, b);
  CHECK(load(p) == b);
  // A symlink is not followed: its target keeps its cache.
  const auto target = dir / "target.ckpt";
  save(target, a);
  (void)io::read_file(target);
  fs::create_symlink(target, dir / "link.ckpt");
  const std::size_t target_before = resident_pages(target);
  io::drop_cached_pages(dir / "link.ckpt");
  CHECK(resident_pages(target) == target_before);
}
