// NumPy backends: files NumPy wrote (tests/data/npy, see tests/interop/make_numpy_fixtures.py),
// .npy round trips for every dtype and format version, the bf16/float8 raw-bits convention,
// hostile headers, and .npz specifics (codecs, mmap, CRCs, foreign archives, the stored tree).
// The full-tree round trip of .npz is in test_roundtrip.cpp.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <ckpt/io/memory.hpp>

#include "test_util.hpp"
#include "truncation.hpp"

using namespace ckpt;
namespace fs = std::filesystem;

namespace {
const fs::path npy_dir = fs::path(CKPT_TEST_DATA) / "npy";

template <class T>
std::vector<T> vals(const Tensor& t) {
  auto v = t.values<T>();
  return {v.begin(), v.end()};
}

// A .npy from a header dict literal and data bytes (the header padded as NumPy pads it).
std::vector<char> make_npy(const std::string& dict, const std::string& data, int major = 1) {
  std::string h = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  h.append((64 - (prefix + h.size() + 1) % 64) % 64, ' ');
  h += '\n';
  std::string b = "\x93NUMPY";
  b += static_cast<char>(major);
  b += '\0';
  const auto n = static_cast<std::uint32_t>(h.size());
  b.append(reinterpret_cast<const char*>(&n), major == 1 ? 2 : 4);
  b += h + data;
  return {b.begin(), b.end()};
}
}  // namespace

TEST_CASE("npy: files written by NumPy read with the right dtype, shape and values", "[npy][numpy]") {
  auto load_t = [](const char* f) { return load(npy_dir / f).tensor(); };
  const Tensor a = load_t("f4_c.npy");
  CHECK(a.shape() == Shape{2, 3});
  CHECK(vals<float>(a) == std::vector<float>{0, 0.5f, 1, 1.5f, 2, 2.5f});
  const Tensor f = load_t("f8_fortran.npy");  // Fortran order: reordered to C order
  REQUIRE(f.shape() == Shape{2, 3, 4});
  std::vector<double> want(24);
  for (int i = 0; i < 24; ++i) want[static_cast<std::size_t>(i)] = i;
  CHECK(vals<double>(f) == want);
  CHECK(vals<std::int32_t>(load_t("i4_big.npy")) == std::vector<std::int32_t>{0, -3, -6, -9, -12});  // big-endian
  CHECK(vals<std::complex<float>>(load_t("c8_big.npy")) == std::vector<std::complex<float>>{{0, 0}, {1, 1}, {2, 2}});
  const Tensor u = load_t("u2_big_fortran.npy");  // both at once
  CHECK(u.shape() == Shape{3, 4});
  CHECK(vals<std::uint16_t>(u) == std::vector<std::uint16_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(load_t("bool.npy") == Tensor::from<bool>({true, false, true}));
  const Tensor s = load_t("scalar.npy");
  CHECK(s.dim() == 0);
  CHECK(s.item<double>() == 2.5);
  CHECK(load_t("empty.npy").shape() == Shape{0, 3});
  CHECK(load_t("empty.npy").dtype() == DType::i16);
  for (const char* v : {"v2.npy", "v3.npy"}) CHECK(vals<std::int64_t>(load_t(v)) == std::vector<std::int64_t>{0, 1, 2, 3});
  const Tensor b = load_t("bf16_bits.npy");  // [('bfloat16', '<u2')] is our bf16
  CHECK(b.dtype() == DType::bf16);
  CHECK(static_cast<float>(b.values<bfloat16>()[0]) == 1.0f);
  CHECK(static_cast<float>(b.values<bfloat16>()[1]) == -2.0f);
  CHECK_THROWS_AS(load(npy_dir / "object.npy"), unsupported_error);
}

TEST_CASE("npz: np.savez and np.savez_compressed archives load flat, by member name", "[npz][numpy]") {
  for (const char* f : {"savez.npz", "savez_compressed.npz"}) {
    INFO(f);
    CHECK(sniff_format(npy_dir / f) == "npz");
    for (bool mmap : {false, true}) {
      LoadOptions o;
      o.mmap = mmap;
      const StateDict sd = load(npy_dir / f, o);
      CHECK(sd.keys() == std::vector<std::string>{"a", "b.c"});  // "b.c" is one key: a flat name
      CHECK(vals<float>(sd.at(KeyPath{"a"}).tensor()) == std::vector<float>{0, 1, 2});
      CHECK(sd.at(KeyPath{"b.c"}).tensor() == Tensor::from<std::int64_t>({0, 1, 2, 3}, {2, 2}));
    }
  }
}

TEST_CASE("npy: every dtype and shape round-trips, the data is 64-byte aligned and mapped", "[npy]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "t.npy";
  std::uint64_t seed = 0;
  for (DType t : all_dtypes) {
    for (const Shape& shape : {Shape{}, Shape{0, 3}, Shape{17}, Shape{2, 3, 1, 5}}) {
      INFO(name(t) << " " << shape_string(shape));
      const Tensor x = ckpt_test::random_tensor(t, shape, ++seed);
      save(p, x);
      CHECK(load(p).tensor() == x);
      npy::InputArchive ar(p);
      CHECK(ar.header().header_bytes % 64 == 0);
      LoadOptions m;
      m.mmap = true;
      const Tensor v = load(p, m).tensor();
      CHECK(v == x);
      CHECK(v.is_view());
    }
  }
  // Format versions 1.0, 2.0 and 3.0 on request.
  const Tensor x = ckpt_test::random_tensor(DType::f32, {3, 4}, 5);
  for (int version : {1, 2, 3}) {
    {
      io::AtomicFile f(p, false);
      npy::write(f.writer(), x, version);
      f.commit();
    }
    npy::InputArchive ar(p);
    CHECK(ar.header().version == version);
    CHECK(ar.header().header_bytes % 64 == 0);
    CHECK(load(p).tensor() == x);
  }
}

TEST_CASE("npy: bf16 and float8 use the structured raw-bits form", "[npy]") {
  ckpt_test::TempDir dir;
  const std::pair<DType, std::string> cases[] = {{DType::bf16, "[('bfloat16', '<u2')]"}, {DType::f8_e4m3, "[('float8_e4m3fn', '|u1')]"},
                                                 {DType::f8_e5m2, "[('float8_e5m2', '|u1')]"}};
  for (const auto& [t, descr] : cases) {
    const Tensor x = ckpt_test::random_tensor(t, {4}, 3);
    save(dir / "b.npy", x);
    const auto bytes = ckpt_test::read_bytes(dir / "b.npy");
    CHECK(std::string(bytes.begin(), bytes.begin() + 64).find("'descr': " + descr) != std::string::npos);
    CHECK(load(dir / "b.npy").tensor() == x);
  }
}

TEST_CASE("npy: a .npy holds one tensor, trees and values are refused", "[npy]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["w"] = Tensor::from<float>({1});
  CHECK_THROWS_AS(save(dir / "a.npy", sd), unsupported_error);
  CHECK_THROWS_AS(save(dir / "b.npy", StateDict(3)), unsupported_error);
  CHECK_THROWS_AS(save(dir / "c.npy", StateDict{}), unsupported_error);
  CHECK(dir.list().empty());  // nothing left behind
}

TEST_CASE("npy: truncation at every length is a format_error with the offset", "[npy][bad]") {
  ckpt_test::TempDir dir;
  save(dir / "full.npy", ckpt_test::random_tensor(DType::f64, {2, 3}, 1));
  ckpt_test::require_truncations_fail(ckpt_test::read_bytes(dir / "full.npy"), dir / "cut.npy", [](const auto& q) { return load_as<npy_format>(q); });
}

TEST_CASE("npy: hostile headers raise the specific error without big allocations", "[npy][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "h.npy";
  auto expect = [&](const std::vector<char>& bytes, auto tag, const char* fragment) {
    ckpt_test::write_bytes(p, bytes);
    using E = typename decltype(tag)::type;
    try {
      load_as<npy_format>(p);
      FAIL("no error for " << fragment);
    } catch (const E& e) {
      CHECK_THAT(e.what(), ckpt_test::Contains(fragment));
      CHECK(e.path() == p.string());
    }
  };
  struct F { using type = format_error; };
  struct U { using type = unsupported_error; };
  const std::string d8(8, '\0');
  expect(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", d8), F{}, "shape too large");
  expect(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", d8), F{}, "negative");
  expect(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", d8), F{}, "data shorter than its shape");
  expect(make_npy("{'descr': '<f4', 'shape': (2,), }", d8), F{}, "exactly the keys");
  expect(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", d8), F{}, "exactly the keys");
  expect(make_npy("{'descr': '<f4', 'descr': '<f4', 'shape': (2,), }", d8), F{}, "duplicate key");
  expect(make_npy("{'descr': <f4, 'fortran_order': False, 'shape': (2,), }", d8), F{}, "invalid .npy header");
  expect(make_npy("{'descr': '<f4', 'fortran_order': 'no', 'shape': (2,), }", d8), F{}, "fortran_order is not a bool");
  expect(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': " + std::string(100, '(') + std::string(100, ')') + "}", d8), F{}, "nested too deeply");
  expect(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", d8), F{}, "integer out of range");
  expect(make_npy("{'descr': '<f16', 'fortran_order': False, 'shape': (2,), }", d8), U{}, "'<f16' is not supported");
  expect(make_npy("{'descr': '<U4', 'fortran_order': False, 'shape': (2,), }", d8), U{}, "strings are not tensors");
  expect(make_npy("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }", d8), U{}, "not supported");
  expect(make_npy("{'descr': [('bfloat16', '<f4')], 'fortran_order': False, 'shape': (2,), }", d8), U{}, "raw-bits");
  auto v4 = make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d8);
  v4[6] = 4;
  expect(v4, U{}, "version 4.0");
  auto huge = make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d8, 2);
  std::memset(huge.data() + 8, 0xff, 4);  // header length 4 GiB - 1
  expect(huge, F{}, "header too large");
  auto past = make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", d8);
  past[8] = '\xf0';
  past[9] = '\x00';  // header length 240 > what the file has
  expect(past, F{}, "header runs past the end");
  // Accepted variants of the literal: double quotes, no trailing comma, Python 2 longs.
  ckpt_test::write_bytes(p, make_npy(R"({"descr": "<i2", "shape": (2L, 1L), "fortran_order": False})", std::string("\x01\x00\x02\x00", 4)));
  CHECK(load(p).tensor() == Tensor::from<std::int16_t>({1, 2}, {2, 1}));
}

TEST_CASE("npz: stored and deflated codecs, mmap views stored aligned members", "[npz]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["emb"] = Tensor(DType::f32, {1 << 14});  // zeros: compressible
  sd["w"] = ckpt_test::random_tensor(DType::f64, {7, 3}, 1);
  sd["h"] = ckpt_test::random_tensor(DType::bf16, {5}, 2);
  save(dir / "raw.npz", sd);
  SaveOptions z;
  z.codec = "zlib";
  save(dir / "z.npz", sd, z);
  CHECK(fs::file_size(dir / "z.npz") < fs::file_size(dir / "raw.npz") / 4);
  LoadOptions m;
  m.mmap = true;
  for (const char* f : {"raw.npz", "z.npz"}) {
    INFO(f);
    CHECK(load(dir / f) == sd);
    const StateDict mapped = load(dir / f, m);
    CHECK(mapped == sd);
    CHECK(mapped.at("w").tensor().is_view() == (std::string(f) == "raw.npz"));
    verify(dir / f);
  }
  npz::InputArchive ar(dir / "z.npz");
  CHECK(ar.entries()[0].codec == "deflate");
  CHECK(ar.entries()[0].stored_nbytes < ar.entries()[0].nbytes);
  SaveOptions bad;
  bad.codec = "lz4";
  CHECK_THROWS_AS(save(dir / "x.npz", sd, bad), unsupported_error);
}

TEST_CASE("npz: a changed byte is a corrupt_error naming the member", "[npz][bad]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["a"] = Tensor::from<float>({1, 2, 3, 4});
  save(dir / "c.npz", sd);
  auto b = ckpt_test::read_bytes(dir / "c.npz");
  const detail::zip::Reader zr(dir / "c.npz");
  const auto* member = zr.find("a.npy");
  const auto off = member->data_offset + member->uncompressed_size - 16 + 5;  // inside the float data (the last 16 bytes)
  b[off] ^= 0x40;
  ckpt_test::write_bytes(dir / "c.npz", b);
  try {
    load(dir / "c.npz");
    FAIL("no error");
  } catch (const corrupt_error& e) {
    CHECK(e.key() == "a.npy");
  }
  CHECK_THROWS_AS(verify(dir / "c.npz"), corrupt_error);
  LoadOptions m;
  m.mmap = true;
  CHECK_NOTHROW(load(dir / "c.npz", m));  // mmap skips checksums unless asked, as native does
  m.verify = true;
  CHECK_THROWS_AS(load(dir / "c.npz", m), corrupt_error);
}

TEST_CASE("npz: foreign members and inconsistent trees are refused", "[npz][bad]") {
  ckpt_test::TempDir dir;
  using Members = std::vector<std::pair<std::string, std::vector<std::byte>>>;
  auto write_zip = [&](const fs::path& p, const Members& members) {
    io::AtomicFile f(p, false);
    detail::zip::Writer w(f.writer());
    for (const auto& [n, d] : members) w.add(n, d);
    w.finish();
    f.commit();
  };
  auto npy_bytes = [](const Tensor& t) {
    io::MemoryWriter m;
    npy::write(m, t);
    return m.take();
  };
  auto tree_bytes = [&](const std::string& json) {
    std::vector<std::uint8_t> v(json.begin(), json.end());
    return npy_bytes(Tensor::from<std::uint8_t>(std::span<const std::uint8_t>(v)));
  };
  const auto a = npy_bytes(Tensor::from<float>({1, 2}));
  write_zip(dir / "txt.npz", Members{{"a.npy", a}, {"notes.txt", {std::byte{'h'}}}});
  CHECK_THROWS_AS(load(dir / "txt.npz"), unsupported_error);
  write_zip(dir / "missing.npz", Members{{"a.npy", a}, {"__ckpt_tree__.npy", tree_bytes(R"({"format":"ckpt-npz","version":1,"tree":{"dict":[["x",{"tensor":"b"}]]}})")}});
  CHECK_THROWS_AS(load(dir / "missing.npz"), format_error);
  write_zip(dir / "unplaced.npz", Members{{"a.npy", a}, {"__ckpt_tree__.npy", tree_bytes(R"({"format":"ckpt-npz","version":1,"tree":{"dict":[]}})")}});
  CHECK_THROWS_AS(load(dir / "unplaced.npz"), format_error);
  write_zip(dir / "v9.npz", Members{{"a.npy", a}, {"__ckpt_tree__.npy", tree_bytes(R"({"format":"ckpt-npz","version":9,"tree":{"dict":[]}})")}});
  CHECK_THROWS_AS(load(dir / "v9.npz"), unsupported_error);
  write_zip(dir / "ok.npz", Members{{"a.npy", a}, {"__ckpt_tree__.npy", tree_bytes(R"({"format":"ckpt-npz","version":1,"tree":{"dict":[["x",{"dict":[["y",{"tensor":"a"}]]}]]}})")}});
  CHECK(load(dir / "ok.npz").at("x.y").tensor() == Tensor::from<float>({1, 2}));
  StateDict reserved;
  reserved["__ckpt_tree__"] = Tensor::from<float>({1});
  CHECK_THROWS_AS(save(dir / "r.npz", reserved), unsupported_error);
}

TEST_CASE("npy/npz: dispatch by extension and by sniffing", "[npy][npz]") {
  ckpt_test::TempDir dir;
  save(dir / "a.npy", Tensor::from<float>({1}));
  StateDict sd;
  sd["x"] = Tensor::from<float>({1});
  save(dir / "a.npz", sd);
  CHECK(sniff_format(dir / "a.npy") == "npy");
  CHECK(sniff_format(dir / "a.npz") == "npz");
  save(dir / "root.npz", Tensor::from<double>({4, 5}));  // a root tensor is member arr_0
  CHECK(detail::zip::Reader(dir / "root.npz").find("arr_0.npy") != nullptr);
  CHECK(load(dir / "root.npz").tensor() == Tensor::from<double>({4, 5}));
  StateDict empty;
  save(dir / "e.npz", empty);
  CHECK(load(dir / "e.npz") == empty);
}
