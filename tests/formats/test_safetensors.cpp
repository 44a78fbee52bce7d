// safetensors: golden bytes (written by tests/interop/safetensors_spec.py from the spec and
// our documented conventions), one bad file per validation rule, mmap alignment, the sharded
// layout, and — when ../shared/fixtures exists — files written by Hugging Face's own libraries.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>

#include "test_util.hpp"
#include "truncation.hpp"

using namespace ckpt;
namespace fs = std::filesystem;

namespace {
const fs::path data_dir = fs::path(CKPT_TEST_DATA) / "safetensors";

// tests/interop/safetensors_spec.py values(): keep the formulas in sync.
Tensor values(DType t, std::int64_t n, std::optional<Shape> shape = std::nullopt) {
  Tensor x(t, shape ? *shape : Shape{n});
  REQUIRE(x.numel() == n);
  std::byte* p = x.mutable_data();
  for (std::int64_t i = 0; i < n; ++i) {
    const double f = static_cast<double>(i) * 0.5 - 1;
    auto put = [&]<class T>(T v) { std::memcpy(p + i * static_cast<std::int64_t>(sizeof(T)), &v, sizeof(T)); };
    switch (t) {
      case DType::f64: put(f); break;
      case DType::f32: put(static_cast<float>(f)); break;
      case DType::f16: put(float16(static_cast<float>(f))); break;
      case DType::bf16: put(static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(static_cast<float>(f)) >> 16)); break;
      case DType::f8_e4m3: case DType::f8_e5m2: put(static_cast<std::uint8_t>(i * 5 + 1)); break;
      case DType::boolean: put(static_cast<std::uint8_t>(i % 2)); break;
      case DType::c64: put(std::complex<float>(static_cast<float>(i) * 0.5f, static_cast<float>(-i))); break;  // +0.0 imag at 0
      case DType::c128: put(std::complex<double>(static_cast<double>(i) * 0.5, static_cast<double>(-i))); break;
      case DType::i8: put(static_cast<std::int8_t>(i * 3 + 1)); break;
      case DType::i16: put(static_cast<std::int16_t>(i * 3 + 1)); break;
      case DType::i32: put(static_cast<std::int32_t>(i * 3 + 1)); break;
      case DType::i64: put(static_cast<std::int64_t>(i * 3 + 1)); break;
      case DType::u8: put(static_cast<std::uint8_t>(i * 3 + 1)); break;
      case DType::u16: put(static_cast<std::uint16_t>(i * 3 + 1)); break;
      case DType::u32: put(static_cast<std::uint32_t>(i * 3 + 1)); break;
      case DType::u64: put(static_cast<std::uint64_t>(i * 3 + 1)); break;
    }
  }
  return x;
}

// The StateDicts of the golden files (safetensors_spec.py make_golden()).
StateDict golden(const std::string& name) {
  StateDict sd;
  if (name == "basic") {
    sd["weight"] = values(DType::f32, 6, Shape{2, 3});
    sd["bias"] = values(DType::f32, 3);
    sd["step"] = values(DType::i64, 1, Shape{});
  } else if (name == "nested") {
    sd["model"].set("0.weight", values(DType::f32, 4, Shape{2, 2}));
    sd["model"]["layers"]["0"]["w"] = values(DType::f16, 2);
    StateDict state = StateDict::dict(Container::int_dict);
    state["0"]["exp_avg"] = values(DType::f32, 2);
    state["0"]["step"] = 3;
    sd["optimizer"].set("state", state);
    sd["optimizer"].set("param_groups", Value::parse(R"([{"lr": 0.5, "params": [0]}])"));
    sd["epoch"] = 7;
    sd["tag"] = "\xce\xb1 run";
    sd["empty"] = StateDict{};
    sd["none"] = nullptr;
  } else if (name == "dtypes") {
    for (DType t : all_dtypes) sd.set(std::string(ckpt::name(t)), values(t, 3));
  } else if (name == "root_tensor") {
    sd = values(DType::f64, 4, Shape{2, 2});
  } else if (name != "empty") {
    FAIL("no golden " << name);
  }
  return sd;
}
}  // namespace

TEST_CASE("safetensors: our writer produces the golden bytes, and reads them back exactly", "[safetensors][golden]") {
  ckpt_test::TempDir dir;
  for (const char* name : {"basic", "nested", "dtypes", "root_tensor", "empty"}) {
    INFO(name);
    const auto file = data_dir / (std::string(name) + ".safetensors");
    const StateDict sd = golden(name);
    save(dir / "out.safetensors", sd);
    CHECK(ckpt_test::read_bytes(dir / "out.safetensors") == ckpt_test::read_bytes(file));
    CHECK(load(file) == sd);
    safetensors::InputArchive ar(file);
    CHECK(ar.data_start() % safetensors::alignment == 0);  // data starts 64-aligned
    CHECK(ar.metadata().at(0) == std::pair<std::string, std::string>("format", "pt"));
  }
  // Complex tensors are stored as their real view, which any reader sees as F32/F64 [..., 2].
  safetensors::InputArchive ar(data_dir / "dtypes.safetensors");
  const auto& n = ar.names();
  const auto c64 = static_cast<std::size_t>(std::find(n.begin(), n.end(), "c64") - n.begin());
  REQUIRE(c64 < n.size());
  CHECK(ar.entries()[c64].dtype == DType::c64);
  CHECK(ar.entries()[c64].shape == Shape{3});
  CHECK(ar.offset(c64) % 4 == 0);  // aligned for std::complex<float>
}

TEST_CASE("safetensors: each validation rule has a bad file that raises a specific error", "[safetensors][bad]") {
  const std::map<std::string, std::string> rules = {
      {"too_small", "file shorter than the 8-byte header length"},
      {"header_too_large", "header larger than 100000000 bytes"},
      {"header_past_end", "header length runs past the end of the file"},
      {"not_utf8", "header is not valid UTF-8"},
      {"bad_start", "header does not start with '{'"},
      {"bad_json", "invalid JSON"},
      {"duplicate_name", "duplicate key 'a'"},
      {"metadata_not_strings", "__metadata__ must map strings to strings"},
      {"missing_field", "tensor info must have dtype, shape and data_offsets"},
      {"negative_shape", "shape must be a list of non-negative integers"},
      {"bad_offsets", "data_offsets must be [begin, end]"},
      {"end_before_begin", "data_offsets end before begin"},
      {"hole", "hole in the data before this tensor"},
      {"overlap", "tensor data overlaps the previous tensor"},
      {"size_mismatch", "byte size does not match shape and dtype"},
      {"shape_overflow", "shape overflows"},
      {"data_past_end", "data does not end at the end of the file"},
      {"data_short", "data does not end at the end of the file"},
      {"tree_names_missing", "the tree names a tensor the file lacks"},
      {"complex_wrong_shape", "complex tensor not stored as its real view"},
  };
  std::size_t seen = 0;
  for (const auto& e : fs::directory_iterator(data_dir / "bad")) {
    const auto stem = e.path().stem().string();
    INFO(stem);
    if (stem == "unknown_dtype") {
      CHECK_THROWS_AS(load_as<safetensors_format>(e.path()), unsupported_error);
      ++seen;
      continue;
    }
    REQUIRE(rules.count(stem) == 1);  // every bad file has its expected message here
    try {
      load_as<safetensors_format>(e.path());
      FAIL("no error");
    } catch (const format_error& x) {
      CHECK_THAT(x.what(), ckpt_test::Contains(rules.at(stem)));
      CHECK(x.path() == e.path().string());
      ++seen;
    }
  }
  CHECK(seen == rules.size() + 1);
}

TEST_CASE("safetensors: truncation at every length is a format_error with the offset", "[safetensors][bad]") {
  ckpt_test::TempDir dir;
  ckpt_test::require_truncations_fail(ckpt_test::read_bytes(data_dir / "nested.safetensors"), dir / "cut.safetensors",
                                      [](const auto& q) { return load_as<safetensors_format>(q); });
}

TEST_CASE("safetensors: mmap views aligned tensors and copies misaligned ones", "[safetensors][mmap]") {
  LoadOptions m;
  m.mmap = true;
  const StateDict mis = load(data_dir / "misaligned.safetensors", m);  // F32 at data offset 3
  const Tensor& a = mis.at(KeyPath{"a"}).tensor();
  const Tensor& b = mis.at(KeyPath{"b"}).tensor();
  CHECK(a.is_view());
  CHECK_FALSE(b.is_view());
  CHECK(b == values(DType::f32, 2));
  CHECK(a == values(DType::u8, 3));
  const StateDict all = load(data_dir / "dtypes.safetensors", m);
  CHECK(all == golden("dtypes"));
  for (const auto& [p, leaf] : all.flatten()) {
    INFO(p.str());
    CHECK(leaf->tensor().is_view());
    CHECK(reinterpret_cast<std::uintptr_t>(leaf->tensor().data()) % detail::element_alignment(leaf->tensor().dtype()) == 0);
  }
}

TEST_CASE("safetensors: writer refuses names that clash or are reserved", "[safetensors][bad]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd.set("a.b", Tensor::from<float>({1}));
  sd["a"]["b"] = Tensor::from<float>({2});  // joined name "a.b" again
  CHECK_THROWS_AS(save(dir / "x.safetensors", sd), unsupported_error);
  CHECK_THROWS_AS(save(dir / "x.npz", sd), unsupported_error);
  StateDict md;
  md.set("__metadata__", Tensor::from<float>({1}));
  CHECK_THROWS_AS(save(dir / "y.safetensors", md), unsupported_error);
  CHECK_FALSE(fs::exists(dir / "x.safetensors"));
}

TEST_CASE("safetensors: dispatch by extension and by sniffing", "[safetensors]") {
  ckpt_test::TempDir dir;
  const StateDict sd = golden("nested");
  save(dir / "a.safetensors", sd);
  CHECK(sniff_format(dir / "a.safetensors") == "safetensors");
  CHECK(format_for_save(dir / "a.safetensors") == "safetensors");
  SaveOptions sharded;
  sharded.format = "safetensors-sharded";
  save(dir / "set", sd, sharded);
  CHECK(sniff_format(dir / "set" / "model.safetensors.index.json") == "safetensors-sharded");
  CHECK(load(dir / "set" / "model.safetensors.index.json") == sd);
  CHECK(load_as<safetensors_sharded_format>(dir / "set") == sd);
}

TEST_CASE("safetensors: sharded layout with an index, replaced as a whole", "[safetensors][sharded]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  for (int i = 0; i < 10; ++i) sd["layers"][std::to_string(i)]["w"] = ckpt_test::random_tensor(DType::f32, {10, 10}, 1 + i);  // 400 bytes
  sd["big"] = ckpt_test::random_tensor(DType::u8, {3000}, 99);  // larger than a shard: its own
  sd["c"] = ckpt_test::random_tensor(DType::c128, {3}, 5);
  sd["epoch"] = 4;
  const auto set = dir / "ckpt";
  safetensors::save_sharded(set, sd, 1000);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(set)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 8);  // layers two by two (800 B each), big alone, c alone, the index
  CHECK(files.front() == "model-00001-of-00007.safetensors");
  CHECK(files[6] == "model-00007-of-00007.safetensors");
  CHECK(files.back() == "model.safetensors.index.json");
  const auto text = ckpt_test::read_bytes(set / "model.safetensors.index.json");
  const Value index = Value::parse(std::string(text.begin(), text.end()));
  CHECK(index["metadata"]["total_size"] == sd.tensor_bytes());
  CHECK(index["weight_map"].size() == sd.tensor_count());
  CHECK(index["weight_map"]["layers.3.w"] == "model-00002-of-00007.safetensors");
  CHECK(index["weight_map"]["big"] == "model-00006-of-00007.safetensors");
  CHECK(index["weight_map"]["c"] == "model-00007-of-00007.safetensors");
  for (int i = 1; i <= 5; ++i) CHECK(fs::file_size(set / files[static_cast<std::size_t>(i - 1)]) < 1000 + 512);  // data + header
  CHECK(load_as<safetensors_sharded_format>(set) == sd);
  LoadOptions m;
  m.mmap = true;
  CHECK(load(set / "model.safetensors.index.json", m) == sd);
  // Each shard is a standalone safetensors file.
  CHECK(load(set / "model-00001-of-00007.safetensors").size() == 2);

  // A second save replaces the set: no stale shards remain.
  StateDict small;
  small["w"] = Tensor::from<float>({1, 2});
  safetensors::save_sharded(set, small, 1000);
  files.clear();
  for (const auto& e : fs::directory_iterator(set)) files.push_back(e.path().filename().string());
  CHECK(files.size() == 2);
  CHECK(load_as<safetensors_sharded_format>(set) == small);
}

TEST_CASE("safetensors: a bad index is a format_error", "[safetensors][sharded][bad]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["a"] = Tensor::from<float>({1, 2});
  sd["b"] = Tensor::from<float>({3});
  const auto set = dir / "s";
  safetensors::save_sharded(set, sd, 4);
  const auto index = set / "model.safetensors.index.json";
  auto write_index = [&](const std::string& s) { ckpt_test::write_bytes(index, std::vector<char>(s.begin(), s.end())); };
  write_index(R"({"metadata": {}, "weight_map": {"a": "../model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  CHECK_THROWS_AS(load_as<safetensors_sharded_format>(set), format_error);
  write_index(R"({"metadata": {}, "weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}})");
  CHECK_THROWS_AS(load_as<safetensors_sharded_format>(set), format_error);  // tensors in the wrong shards
  write_index(R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors"}})");
  CHECK(load_as<safetensors_sharded_format>(set).keys() == std::vector<std::string>{"a"});  // shards the index omits are not read
  write_index(R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
  CHECK_THROWS_AS(load_as<safetensors_sharded_format>(set), format_error);  // c is in no shard
  write_index(R"({"metadata": {}, "weight_map": [1, 2]})");
  CHECK_THROWS_AS(load_as<safetensors_sharded_format>(set), format_error);
  write_index(R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "missing.safetensors"}})");
  CHECK_THROWS_AS(load_as<safetensors_sharded_format>(set), io_error);
}

#ifdef CKPT_SHARED_FIXTURES
namespace {
const fs::path fixtures = CKPT_SHARED_FIXTURES;

// Compare a loaded flat safetensors StateDict with the fixture's expected .npz (read with our
// npz reader): bf16 is stored there as uint16 bits under KEY@bf16, float8 as uint8 bits under
// KEY@float8_e4m3fn / KEY@float8_e5m2.
void check_expected(const StateDict& got, const fs::path& expected_npz, std::size_t count) {
  const StateDict exp = load(expected_npz);
  REQUIRE(exp.size() == count);
  REQUIRE(got.size() == count);
  for (const auto& it : exp.items()) {
    INFO(it.key);
    const auto at = it.key.find('@');
    const std::string key = it.key.substr(0, at);
    REQUIRE(got.find_key(key) != nullptr);
    const Tensor& t = got.find_key(key)->tensor();
    const Tensor& e = it.value.tensor();
    if (at != std::string::npos) {
      CHECK(t.dtype() == *dtype_from_name(it.key.substr(at + 1)));
      CHECK(t.shape() == e.shape());
      CHECK(std::equal(t.bytes().begin(), t.bytes().end(), e.bytes().begin(), e.bytes().end()));
    } else {
      CHECK(t == e);
    }
  }
}
}  // namespace

TEST_CASE("safetensors fixtures: every dtype written by Hugging Face safetensors 0.8", "[safetensors][fixtures]") {
  const auto file = fixtures / "hf" / "all_dtypes.safetensors";
  for (bool mmap : {false, true}) {
    LoadOptions o;
    o.mmap = mmap;
    check_expected(load(file, o), fixtures / "hf" / "all_dtypes.expected.npz", 17);
  }
  safetensors::InputArchive ar(file);
  const auto& md = ar.metadata();
  CHECK(std::find(md.begin(), md.end(), std::pair<std::string, std::string>("format", "pt")) != md.end());
  // The expected.json's dtypes and shapes, in torch spelling.
  const auto text = ckpt_test::read_bytes(fixtures / "hf" / "all_dtypes.expected.json");
  const Value ej = Value::parse(std::string(text.begin(), text.end()));
  const StateDict sd = load(file);
  for (const auto& [k, v] : ej["tensors"].items()) {
    INFO(k);
    CHECK(sd.find_key(k)->tensor().dtype() == *dtype_from_name(v["dtype"].get<std::string>()));
    CHECK(sd.find_key(k)->tensor().shape() == v["shape"].get<Shape>());
  }
}

TEST_CASE("safetensors fixtures: model state dicts written by safetensors save_file", "[safetensors][fixtures]") {
  check_expected(load(fixtures / "safetensors" / "multi_layer.safetensors"), fixtures / "safetensors" / "multi_layer.expected.npz", 9);
  check_expected(load(fixtures / "safetensors" / "mnist.safetensors"), fixtures / "safetensors" / "mnist.expected.npz", 20);
  const StateDict sd = load(fixtures / "safetensors" / "multi_layer.safetensors");
  CHECK(sd.find_key("norm1.num_batches_tracked")->tensor().dim() == 0);  // I64 0-d
  CHECK(sd.find_key("norm1.num_batches_tracked")->tensor().dtype() == DType::i64);
}

TEST_CASE("safetensors fixtures: a sharded BERT saved by transformers save_pretrained", "[safetensors][fixtures][sharded]") {
  const auto dir = fixtures / "hf" / "tiny_bert_sharded";
  safetensors::ShardedInputArchive ar(dir);
  CHECK(ar.shard_count() == 3);
  check_expected(load_as<safetensors_sharded_format>(dir), dir / "state_dict.expected.npz", 39);
  LoadOptions m;
  m.mmap = true;
  check_expected(load(dir / "model.safetensors.index.json", m), dir / "state_dict.expected.npz", 39);
}
#endif
