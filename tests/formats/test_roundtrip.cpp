// Round-trip tests templated over every backend: every dtype × shapes {0-d, empty, 1-D, 4-D},
// seeded random data, nested trees with dotted keys, containers and value leaves; eager and
// mmap loads where the backend has them.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>

#include "test_util.hpp"

using namespace ckpt;

namespace {
StateDict zoo(std::uint64_t seed) {
  StateDict sd;
  std::uint64_t s = seed;
  for (DType t : all_dtypes) {
    const std::string n(name(t));
    sd["scalar"].set(n, ckpt_test::random_tensor(t, {}, ++s));
    sd["empty"].set(n, ckpt_test::random_tensor(t, {0, 3}, ++s));
    sd["vec"].set(n, ckpt_test::random_tensor(t, {17}, ++s));
    sd["4d"].set(n, ckpt_test::random_tensor(t, {2, 3, 1, 5}, ++s));
  }
  sd["model"].set("0.weight", ckpt_test::random_tensor(DType::f32, {4, 4}, ++s));  // flat dotted key
  sd["model"].set("0.bias", ckpt_test::random_tensor(DType::f32, {4}, ++s));
  StateDict state = StateDict::dict(Container::int_dict);
  state["0.step"] = 3;
  state["0.exp_avg"] = ckpt_test::random_tensor(DType::f32, {4}, ++s);
  sd["optimizer"].set("state", state);
  sd["optimizer"].set("param_groups", Value::parse(R"([{"lr": 0.001, "betas": [0.9, 0.999], "params": [0, 1]}])"));
  sd["epoch"] = 12;
  sd["loss"] = 0.123456789012345;
  sd["name"] = "run \"α\"";
  sd["flag"] = false;
  sd["nothing"] = nullptr;
  sd["empty_dict"] = StateDict{};
  sd["list"] = StateDict::dict(Container::list);
  sd["list"].set("0", ckpt_test::random_tensor(DType::i64, {2}, ++s));
  return sd;
}

template <class F>
void check_round_trip(const std::filesystem::path& p) {
  const StateDict sd = zoo(42);
  save_as<F>(p, sd);
  StateDict eager = load_as<F>(p);
  REQUIRE(eager == sd);
  // Flattened paths and order are preserved.
  auto a = sd.flatten(), b = eager.flatten();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) REQUIRE(a[i].first == b[i].first);
  if constexpr (archive_traits<F>::caps.zero_copy_read) {
    LoadOptions o;
    o.mmap = true;
    StateDict mapped = load_as<F>(p, o);
    REQUIRE(mapped == sd);
    REQUIRE(mapped.at("4d.f32").tensor().is_view());
  }
}
}  // namespace

TEMPLATE_TEST_CASE("round trip: every dtype, shapes 0-d/empty/1-D/4-D, nested tree", "[formats][roundtrip]", native_format, json_format, memory_format, npz_format, safetensors_format) {
  ckpt_test::TempDir dir;
  check_round_trip<TestType>(dir / ("zoo" + std::string(archive_traits<TestType>::extensions.empty() ? ".mem" : archive_traits<TestType>::extensions[0])));
}

TEST_CASE("save/load dispatch by extension and by sniffing", "[formats]") {
  ckpt_test::TempDir dir;
  StateDict sd = zoo(1);
  save(dir / "a.ckpt", sd);
  save(dir / "a.json", sd);
  save(dir / "noext", sd);  // native when the extension says nothing
  SaveOptions as_json;
  as_json.format = "json";
  save(dir / "forced.bin", sd, as_json);
  CHECK(sniff_format(dir / "a.ckpt") == "native");
  CHECK(sniff_format(dir / "a.json") == "json");
  CHECK(sniff_format(dir / "noext") == "native");
  CHECK(sniff_format(dir / "forced.bin") == "json");
  CHECK(load(dir / "forced.bin") == sd);
  SaveOptions bogus;
  bogus.format = "hdf5";
  CHECK_THROWS_AS(save(dir / "x", sd, bogus), unsupported_error);
}

TEST_CASE("native zlib codec: smaller for compressible data, bit-exact, raw when it does not help", "[formats][codec]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  Tensor half_zero(DType::f32, {1 << 16});
  auto v = half_zero.mutable_values<float>();
  for (std::size_t i = 0; i < v.size(); i += 2) v[i] = static_cast<float>(i) * 0.5f;
  sd["emb"] = half_zero;
  sd["noise"] = ckpt_test::random_tensor(DType::u8, {4096}, 5);  // incompressible
  SaveOptions z;
  z.codec = "zlib";
  save(dir / "z.ckpt", sd, z);
  save(dir / "r.ckpt", sd);
  CHECK(std::filesystem::file_size(dir / "z.ckpt") < std::filesystem::file_size(dir / "r.ckpt") / 2);
  CHECK(load(dir / "z.ckpt") == sd);
  LoadOptions m;
  m.mmap = true;
  CHECK(load(dir / "z.ckpt", m) == sd);  // compressed entries are decoded, raw ones mapped
  native::InputArchive ar(dir / "z.ckpt");
  CHECK(ar.entries()[0].codec == "zlib");
  CHECK(ar.entries()[1].codec == "raw");
  verify(dir / "z.ckpt");
}
