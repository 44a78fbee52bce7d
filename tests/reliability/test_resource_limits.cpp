// Resource limits, every reader: headers that claim 2^62 elements (or 2^62 bytes) must raise a
// format_error naming the file, and no reader may allocate anything near what they claim —
// the largest single allocation while loading is measured by a replaced operator new. Claims
// that are possible but more than the file can justify (a zlib entry decoding to 1 GiB from a
// few hundred bytes) are refused before allocating; an allocation that fails anyway (a real file
// too large for the memory there is) is an io_error (ENOMEM) naming the file, never a
// std::bad_alloc escaping a reader.
#include "ckpt_catch.hpp"
#include <cerrno>
#include <ckpt/ckpt.hpp>
#include <ckpt/io/memory.hpp>

#include "alloc_peak.hpp"
#include "test_util.hpp"

using namespace ckpt;

namespace {
constexpr std::int64_t e62 = std::int64_t{1} << 62;
constexpr std::int64_t e60 = std::int64_t{1} << 60;  // f32 elements in 2^62 bytes
constexpr std::size_t budget = std::size_t{64} << 20;  // far above these tiny files, far below 2^62

std::vector<std::byte> B(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}
void put(const std::filesystem::path& p, const std::vector<std::byte>& b) {
  ckpt_test::write_bytes(p, std::vector<char>(reinterpret_cast<const char*>(b.data()), reinterpret_cast<const char*>(b.data()) + b.size()));
}
std::vector<std::byte> npy_file(std::int64_t elements) {
  auto b = detail::npy::encode_header(DType::f32, {elements});
  b.resize(b.size() + 16);  // a few bytes of "data"
  return b;
}
std::vector<std::byte> zip_of(const std::string& name, const std::vector<std::byte>& data, std::size_t align = 0) {
  io::MemoryWriter mw;
  detail::zip::Writer z(mw);
  z.add(name, data, false, align);
  z.finish();
  return mw.take();
}
std::vector<std::byte> safetensors_file(const std::string& header) {
  std::vector<std::byte> b(8);
  const std::uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  const auto h = B(header);
  b.insert(b.end(), h.begin(), h.end());
  b.resize(b.size() + 16);
  return b;
}
/// A torch.save zip whose data.pkl is {'x': tensor of `numel` f32 elements, size [numel]}.
std::vector<std::byte> pt_file(std::int64_t numel) {
  detail::pickle::Pickler pk;
  pk.empty_dict();
  pk.mark();
  pk.string("x");
  pk.global("torch._utils", "_rebuild_tensor_v2");
  pk.mark();
  pk.mark();
  pk.string("storage");
  pk.global("torch", "FloatStorage");
  pk.string("0");
  pk.string("cpu");
  pk.integer(numel);
  pk.tuple_from_mark();
  pk.binpersid();
  pk.integer(0);
  pk.mark();
  pk.integer(numel);
  pk.tuple_from_mark();
  pk.mark();
  pk.integer(1);
  pk.tuple_from_mark();
  pk.boolean(false);
  pk.global("collections", "OrderedDict");
  pk.tuple_n(0);
  pk.reduce();
  pk.tuple_from_mark();
  pk.reduce();
  pk.setitems();
  io::MemoryWriter mw;
  detail::zip::Writer z(mw);
  z.add("archive/data.pkl", pk.finish());
  z.add("archive/byteorder", B("little"));
  z.add("archive/data/0", std::vector<std::byte>(16), false, 64);
  z.add("archive/version", B("3\n"));
  z.finish();
  return mw.take();
}

/// What a file of `p`'s size can justify allocating at once: working buffers (1 MiB) plus what
/// deflate can expand it to (1032:1).
std::size_t justified(const std::filesystem::path& p) {
  return (std::size_t{1} << 20) + 1032 * static_cast<std::size_t>(std::filesystem::file_size(p));
}
/// Set the uncompressed size of zip member `name` in the central directory of `zip` (the local
/// header of a member with a data descriptor holds no sizes).
void patch_central_size(std::vector<std::byte>& zip, const std::string& name, std::uint32_t usize) {
  for (std::size_t i = 0; i + 46 <= zip.size(); ++i) {
    if (detail::load_le<std::uint32_t>(zip.data() + i) != detail::zip::central_sig) continue;
    const auto n = detail::load_le<std::uint16_t>(zip.data() + i + 28);
    if (std::string_view(reinterpret_cast<const char*>(zip.data() + i + 46), n) != name) continue;
    detail::store_le<std::uint32_t>(zip.data() + i + 24, usize);
    return;
  }
  FAIL("no central directory record for " << name);
}
/// A save of {"a": `n` f32 values that compress well}.
StateDict compressible(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 7);
  StateDict sd;
  sd["a"] = Tensor::from<float>(v);
  return sd;
}

/// Loads `p` eagerly and with mmap: each must be a format_error naming the file (and `key` when
/// given), never a std::bad_alloc, with no single allocation over `bound`.
void expect_refused(const std::filesystem::path& p, const std::string& what, std::size_t bound = budget - 1, const std::string& key = {}) {
  for (const bool mmap : {false, true}) {
    INFO(what << (mmap ? " (mmap)" : " (eager)") << ", " << std::filesystem::file_size(p) << " bytes");
    ckpt_test::largest_allocation() = 0;
    try {
      LoadOptions o;
      o.mmap = mmap;
      (void)load(p, o);
      FAIL("loaded");
    } catch (const format_error& e) {
      CHECK(e.path() == p.string());
      if (!key.empty()) CHECK(e.key() == key);
    } catch (const std::bad_alloc&) {
      FAIL("std::bad_alloc escaped the reader");
    }
    CHECK(ckpt_test::largest_allocation() <= bound);
  }
}
}  // namespace

TEST_CASE("headers claiming 2^62 elements or bytes: format_error, no large allocation", "[reliability][limits]") {
  ckpt_test::TempDir dir;
  int cases = 0;
  auto run = [&](const std::string& file, const std::vector<std::byte>& bytes, const std::string& what) {
    const auto p = dir / file;
    put(p, bytes);
    expect_refused(p, what);
    ++cases;
  };
  {  // native: the footer's table, with a valid footer checksum
    StateDict sd;
    sd["a"] = Tensor::from<float>({1, 2, 3, 4});
    const auto p = dir / "n.ckpt";
    for (const auto& edit : std::vector<std::function<void(Value&)>>{
             [](Value& f) { f["tensors"][0]["shape"] = {e62}; },
             [](Value& f) { f["tensors"][0]["shape"] = {e60}; f["tensors"][0]["nbytes"] = std::uint64_t{1} << 62; f["tensors"][0]["stored_nbytes"] = std::uint64_t{1} << 62; },
             [](Value& f) { f["tensors"][0]["shape"] = {e62, e62}; f["tensors"][0]["nbytes"] = 0; }}) {
      save(p, sd);
      ckpt_test::rewrite_native_footer(p, edit);
      expect_refused(p, "native");
      ++cases;
    }
  }
  auto text = [](const std::string& s) { return B(s); };
  run("j1.json", text(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[4611686018427387904],"data":""}]})"), "json 2^62 elements");
  run("j2.json", text(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[1152921504606846976],"data":"AAAA"}]})"), "json 2^62 bytes");
  run("a.npy", npy_file(e62), "npy 2^62 elements");
  run("b.npy", npy_file(e60), "npy 2^62 bytes");
  run("a.npz", zip_of("w.npy", npy_file(e62)), "npz member claiming 2^62 elements");
  run("b.npz", zip_of("w.npy", npy_file(e60), 64), "npz member claiming 2^62 bytes");
  run("a.safetensors", safetensors_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}})"), "safetensors 2^62 elements");
  run("b.safetensors", safetensors_file(R"({"a":{"dtype":"F32","shape":[1152921504606846976],"data_offsets":[0,4611686018427387904]}})"), "safetensors 2^62 bytes");
  run("a.pt", pt_file(e62), "pt storage of 2^62 elements");
  run("b.pt", pt_file(e60), "pt storage of 2^62 bytes");
  WARN(cases << " hostile headers, each loaded eagerly and with mmap");
  CHECK(cases == 13);
}

TEST_CASE("the allocation probe itself sees a large allocation", "[reliability][limits]") {
  ckpt_test::largest_allocation() = 0;
  const Tensor t(DType::f32, {std::int64_t{32} << 20});  // 128 MiB
  CHECK(ckpt_test::largest_allocation() >= t.nbytes());
}

TEST_CASE("native: a zlib entry claiming more than deflate can produce is refused before allocating", "[reliability][limits]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "bomb.ckpt";
  SaveOptions so;
  so.codec = "zlib";
  // 1 GiB and 32 GiB claimed by a zlib stream of a few hundred bytes (its CRC still matches:
  // only the declared size changes). The 32 GiB claim runs under a 1 GiB allocation limit, as
  // under `ulimit -v`: no std::bad_alloc may escape.
  for (const std::uint64_t claim : {std::uint64_t{1} << 30, std::uint64_t{32} << 30}) {
    save(p, compressible(4096), so);
    ckpt_test::rewrite_native_footer(p, [&](Value& f) {
      REQUIRE(f["tensors"][0]["codec"] == "zlib");
      f["tensors"][0]["shape"] = {claim / 4};
      f["tensors"][0]["nbytes"] = claim;
    });
    ckpt_test::AllocationLimit limit(std::size_t{1} << 30);
    expect_refused(p, "claim of " + std::to_string(claim) + " bytes", justified(p), "a");
    CHECK_THROWS_WITH(load(p), ckpt_test::Contains("1032"));
  }
}

TEST_CASE("every reader: claims beyond what the file can justify are refused before allocating", "[reliability][limits]") {
  ckpt_test::TempDir dir;
  int cases = 0;
  auto check = [&](const std::string& file, const std::vector<std::byte>& bytes, const std::string& what) {
    const auto p = dir / file;
    put(p, bytes);
    expect_refused(p, what, justified(p));
    ++cases;
  };
  {  // native: a zlib entry claiming 1 GiB (see the test above)
    const auto p = dir / "n.ckpt";
    SaveOptions so;
    so.codec = "zlib";
    save(p, compressible(4096), so);
    ckpt_test::rewrite_native_footer(p, [](Value& f) { f["tensors"][0]["shape"] = {std::int64_t{1} << 28}; f["tensors"][0]["nbytes"] = std::uint64_t{1} << 30; });
    const auto b = ckpt_test::read_bytes(p);
    check("n2.ckpt", {reinterpret_cast<const std::byte*>(b.data()), reinterpret_cast<const std::byte*>(b.data()) + b.size()}, "native zlib entry claiming 1 GiB");
  }
  // json: a 1 GiB tensor whose data is empty, a list of nothing, or 3 bytes of base64
  check("a.json", B(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[268435456],"data":""}]})"), "json 1 GiB, empty base64");
  check("b.json", B(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[268435456],"data":[]}]})"), "json 1 GiB, empty list");
  check("c.json", B(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"u8","shape":[67108864],"data":"AAAA"}]})"), "json 64 MiB, 3 bytes of base64");
  check("d.json", B(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f64","shape":[8388608],"data":[[1,2],[3]]}]})"), "json 64 MiB, 3 listed values");
  // npy: a shape of 1 GiB over 16 bytes of data
  check("a.npy", npy_file(std::int64_t{1} << 28), "npy 1 GiB over 16 bytes");
  {  // npz: a deflated member whose declared size is 1 GiB
    io::MemoryWriter mw;
    detail::zip::Writer z(mw);
    const auto hdr = detail::npy::encode_header(DType::f32, {std::int64_t{1} << 14});
    std::vector<std::byte> member(hdr);
    member.resize(member.size() + (std::size_t{1} << 16));
    z.add("w.npy", member, true);
    z.finish();
    auto b = mw.take();
    patch_central_size(b, "w.npy", 1u << 30);
    check("a.npz", b, "npz member declaring 1 GiB");
  }
  check("b.pt", pt_file(std::int64_t{1} << 28), "pt storage of 1 GiB over a 16-byte record");
  {  // pt: a deflated data.pkl whose declared size is 200 MiB
    put(dir / "plain.pt", pt_file(4));
    io::MemoryWriter mw;
    detail::zip::Writer z(mw);
    detail::zip::Reader r(dir / "plain.pt");
    for (const auto& e : r.entries()) z.add(e.name, r.read(e), e.name.ends_with("data.pkl"), e.name.find("/data/") != std::string::npos ? 64 : 0);
    z.finish();
    auto d = mw.take();
    patch_central_size(d, "archive/data.pkl", 200u << 20);
    check("c.pt", d, "pt data.pkl declaring 200 MiB");
  }
  {  // safetensors: a header length of 90 MB in a file of a few bytes
    auto b = safetensors_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})");
    detail::store_le<std::uint64_t>(b.data(), 90'000'000);
    check("a.safetensors", b, "safetensors header length of 90 MB");
  }
  WARN(cases << " files claiming more than they can justify, each loaded eagerly and with mmap");
  CHECK(cases == 10);
}

TEST_CASE("every reader: an allocation that fails is an io_error (ENOMEM) naming the file, never std::bad_alloc", "[reliability][limits]") {
  ckpt_test::TempDir dir;
  const StateDict sd = compressible(std::size_t{1} << 19);  // 2 MiB
  int cases = 0;
  auto expect_out_of_memory = [&](const std::filesystem::path& p) {
    ckpt_test::AllocationLimit limit(std::size_t{1} << 20);  // as if only 1 MiB could be had
    try {
      (void)load(p);
      FAIL("loaded");
    } catch (const io_error& e) {
      CHECK(e.path() == p.string());
      CHECK(e.code() == ENOMEM);
    } catch (const std::bad_alloc&) {
      FAIL("std::bad_alloc escaped the reader");
    }
    ++cases;
  };
  for (const std::string file : {"a.ckpt", "a.json", "a.safetensors", "a.npz", "a.pt"}) {
    for (const std::string codec : {"raw", "zlib"}) {
      if (codec == "zlib" && file != "a.ckpt" && file != "a.npz" && file != "a.pt") continue;
      INFO(file << " " << codec);
      const auto p = dir / file;
      SaveOptions so;
      so.codec = codec;
      save(p, sd, so);
      expect_out_of_memory(p);
    }
  }
  save(dir / "a.npy", StateDict(sd.at("a").tensor()));  // npy: a lone tensor
  expect_out_of_memory(dir / "a.npy");
  CHECK(cases == 9);
}
