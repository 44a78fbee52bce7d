// io::Source: every built-in single-file reader reads a checkpoint held in memory (owned or
// borrowed) exactly as it reads the file, eagerly and zero-copy; zero-copy tensors view the
// memory when it is aligned and a single aligned copy of it when it is not; errors name the
// source.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>

#include "test_util.hpp"

using namespace ckpt;

namespace {
StateDict sample() {
  StateDict sd;
  sd["w"] = ckpt_test::random_tensor(DType::f64, {3, 5}, 1);
  sd["b"] = ckpt_test::random_tensor(DType::f32, {5}, 2);
  sd["epoch"] = 3;
  return sd;
}
std::vector<std::byte> bytes_of(const std::filesystem::path& p) {
  const auto c = ckpt_test::read_bytes(p);
  const auto* b = reinterpret_cast<const std::byte*>(c.data());
  return {b, b + c.size()};
}
}  // namespace

TEST_CASE("every single-file format loads from memory as from its file, eagerly and zero-copy", "[io][source]") {
  ckpt_test::TempDir dir;
  const StateDict sd = sample();
  int formats = 0;
  for (const char* file : {"a.ckpt", "a.json", "a.safetensors", "a.npz", "a.pt", "a.npy"}) {
    INFO(file);
    const auto p = dir / file;
    const StateDict want = std::string(file) == "a.npy" ? StateDict(sd.at("w").tensor()) : sd;
    save(p, want);
    auto owned = std::make_shared<const std::vector<std::byte>>(bytes_of(p));
    // 64-byte aligned and misaligned copies of the bytes, borrowed.
    std::vector<std::byte> storage(owned->size() + 128), storage2(owned->size() + 128);
    auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(storage.data()) + 63) / 64 * 64);
    auto* misaligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(storage2.data()) + 63) / 64 * 64) + 1;
    std::memcpy(aligned, owned->data(), owned->size());
    std::memcpy(misaligned, owned->data(), owned->size());
    for (const bool mmap : {false, true}) {
      LoadOptions o;
      o.mmap = mmap;
      CHECK(load(io::Source::memory(owned, "upload"), o) == want);
      CHECK(load(io::Source::borrowed({aligned, owned->size()}, "upload"), o) == want);
      CHECK(load(io::Source::borrowed({misaligned, owned->size()}, "upload"), o) == want);
      CHECK(load(io::Source::file(p), o) == want);
    }
    ++formats;
  }
  CHECK(formats == 6);
}

TEST_CASE("zero-copy loads from memory view aligned bytes and copy misaligned ones once", "[io][source]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "a.ckpt";
  save(p, sample());
  const auto b = bytes_of(p);
  std::vector<std::byte> storage(b.size() + 128);
  auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(storage.data()) + 63) / 64 * 64);
  std::memcpy(aligned, b.data(), b.size());
  LoadOptions o;
  o.mmap = true;
  {
    const StateDict got = load(io::Source::borrowed({aligned, b.size()}, "upload"), o);
    const auto* data = got.at("w").tensor().data();
    CHECK(data >= aligned);
    CHECK(data < aligned + b.size());  // a view of the caller's bytes
  }
  std::memmove(aligned + 8, aligned, b.size());
  const StateDict got = load(io::Source::borrowed({aligned + 8, b.size()}, "upload"), o);
  const auto* data = got.at("w").tensor().data();
  CHECK((data < aligned + 8 || data >= aligned + 8 + b.size()));  // not a view of them: a copy
  CHECK(reinterpret_cast<std::uintptr_t>(data) % 64 == 0);
  CHECK(got == sample());
}

TEST_CASE("errors reading memory name the source, reading past its end is an io_error", "[io][source]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "a.ckpt";
  save(p, sample());
  auto b = bytes_of(p);
  b[b.size() - 40] ^= std::byte{1};  // inside the footer: its CRC fails
  try {
    (void)load(io::Source::borrowed(b, "upload.ckpt"));
    FAIL("loaded");
  } catch (const corrupt_error& e) {
    CHECK(e.path() == "upload.ckpt");
  }
  const std::vector<std::byte> junk(10, std::byte{'x'});
  CHECK_THROWS_AS(load(io::Source::borrowed(junk, "junk")), format_error);
  const auto src = io::Source::borrowed(junk, "junk");
  std::byte out[4];
  CHECK_THROWS_AS(src.pread_all(out, 8), io_error);
  CHECK_NOTHROW(src.pread_all(out, 6));
  CHECK_THROWS_AS(io::Source::file(dir / "missing.ckpt"), io_error);
}
