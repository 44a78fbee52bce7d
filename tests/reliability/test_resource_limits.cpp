// Resource limits, every reader: headers that claim 2^62 elements (or 2^62 bytes) must raise a
// format_error naming the file, and no reader may allocate anything near what they claim —
// the largest single allocation while loading is measured by a replaced operator new.
#include "ckpt_catch.hpp"
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

/// Loads `p` eagerly and with mmap: each must be a format_error naming the file, with no
/// allocation over the budget.
void expect_refused(const std::filesystem::path& p, const std::string& what) {
  for (const bool mmap : {false, true}) {
    INFO(what << (mmap ? " (mmap)" : " (eager)"));
    ckpt_test::largest_allocation() = 0;
    try {
      LoadOptions o;
      o.mmap = mmap;
      (void)load(p, o);
      FAIL("loaded");
    } catch (const format_error& e) {
      CHECK(e.path() == p.string());
    }
    CHECK(ckpt_test::largest_allocation() < budget);
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
