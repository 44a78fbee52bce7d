// JSON that comes from files (native footers, .json checkpoints, safetensors headers, the npz
// tree member, index files): with LoadOptions::strict (the default) a member the reader does not
// know is an error, raised when the parser meets it, before it is built; without strict it is
// skipped, never built. Whatever the document, it may take at most detail::json_memory_factor
// times its size in memory (plus a floor): the largest single allocation while loading is
// measured by a replaced operator new.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <ckpt/io/memory.hpp>

#include "alloc_peak.hpp"
#include "test_util.hpp"

using namespace ckpt;
namespace fs = std::filesystem;

namespace {
std::vector<std::byte> B(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}
void put(const fs::path& p, const std::vector<std::byte>& b) {
  ckpt_test::write_bytes(p, std::vector<char>(reinterpret_cast<const char*>(b.data()), reinterpret_cast<const char*>(b.data()) + b.size()));
}
StateDict small() {
  StateDict sd;
  sd["a"] = Tensor::from<float>({1, 2, 3, 4});
  sd["n"] = 5;
  return sd;
}
/// `n` copies of `item`, comma-separated, in brackets.
std::string json_list(const std::string& item, std::size_t n) {
  std::string s = "[";
  s.reserve(n * (item.size() + 1) + 2);
  for (std::size_t i = 0; i < n; ++i) (s += i ? "," : "") += item;
  return s + "]";
}
/// Insert `member` ("\"name\":value") right after the first '{' of `text` at or after `from`.
std::string with_member(const std::string& text, const std::string& member, std::size_t from = 0) {
  const auto at = text.find('{', from);
  REQUIRE(at != std::string::npos);
  return text.substr(0, at + 1) + member + "," + text.substr(at + 1);
}
LoadOptions lenient() {
  LoadOptions o;
  o.strict = false;
  return o;
}
void require_loads_small(const fs::path& p, const LoadOptions& o = {}) {
  const StateDict got = load(p, o);
  CHECK(got.at("a").tensor().values<float>()[3] == 4.0f);
  CHECK(got.at("n").value() == 5);
}
/// load(p) must be a format_error naming p whose message contains `what`.
void require_refused(const fs::path& p, const std::string& what, const LoadOptions& o = {}) {
  try {
    (void)load(p, o);
    FAIL("loaded " << p);
  } catch (const format_error& e) {
    CHECK(e.path() == p.string());
    CHECK_THAT(e.what(), ckpt_test::Contains(what));
  }
}
/// A safetensors file of one f32 tensor "a" = [1, 2, 3, 4] whose header is `header`.
std::vector<std::byte> safetensors_with(const std::string& header) {
  std::vector<std::byte> b(8);
  detail::store_le<std::uint64_t>(b.data(), header.size());
  const auto h = B(header);
  b.insert(b.end(), h.begin(), h.end());
  for (float f : {1.0f, 2.0f, 3.0f, 4.0f}) {
    const auto* q = reinterpret_cast<const std::byte*>(&f);
    b.insert(b.end(), q, q + 4);
  }
  return b;
}
/// An .npz of tensor "a" = [1, 2, 3, 4] whose tree member holds `doc`.
std::vector<std::byte> npz_with(const std::string& doc) {
  io::MemoryWriter mw;
  detail::zip::Writer z(mw);
  const Tensor a = Tensor::from<float>({1, 2, 3, 4});
  z.add_parts("a.npy", {detail::npy::encode_header(DType::f32, {4}), a.bytes()});
  z.add_parts("__ckpt_tree__.npy", {detail::npy::encode_header(DType::u8, {static_cast<std::int64_t>(doc.size())}), B(doc)});
  z.finish();
  return mw.take();
}
}  // namespace

TEST_CASE("native: a 10 MB unknown footer member is refused in strict loads and skipped otherwise, never built", "[reliability][json]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "junk.ckpt";
  save(p, small());
  ckpt_test::rewrite_native_footer_text(p, [](const std::string& t) { return with_member(t, "\"junk\":" + json_list("0", 5'000'000)); });
  const auto size = fs::file_size(p);
  REQUIRE(size > 10'000'000);
  const std::size_t bound = size + (std::size_t{1} << 20);  // the footer's text, and little more
  for (const bool mmap : {false, true}) {
    INFO((mmap ? "mmap" : "eager"));
    LoadOptions strict;
    strict.mmap = mmap;
    ckpt_test::largest_allocation() = 0;
    require_refused(p, "unknown member 'junk'", strict);
    CHECK(ckpt_test::largest_allocation() <= bound);

    LoadOptions o = lenient();
    o.mmap = mmap;
    ckpt_test::largest_allocation() = 0;
    require_loads_small(p, o);
    CHECK(ckpt_test::largest_allocation() <= bound);
  }
}

TEST_CASE("native: unknown members in a tensor entry or a tree node are errors in strict loads", "[reliability][json]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "n.ckpt";
  for (const auto& [edit, what] : std::vector<std::pair<std::function<void(Value&)>, std::string>>{
           {[](Value& f) { f["tensors"][0]["x"] = 1; }, "unknown member 'x' at tensors[0]"},
           {[](Value& f) { f["tree"]["y"] = Value::array({1, 2}); }, "unknown member 'y' at tree"},
           {[](Value& f) { f["tree"]["dict"][0][1]["z"] = "?"; }, "unknown member 'z' at tree.dict[0][1]"}}) {
    INFO(what);
    save(p, small());
    ckpt_test::rewrite_native_footer(p, edit);
    require_refused(p, what);
    require_loads_small(p, lenient());
  }
  save(p, small());  // free JSON in a value leaf is data, not a member of the format
  ckpt_test::rewrite_native_footer(p, [](Value& f) {
    for (auto& item : f["tree"]["dict"])
      if (item[0] == "n") item[1]["value"] = Value{{"anything", Value::array({1, Value{{"goes", true}}})}};
  });
  CHECK(load(p).at("n").value()["anything"][1]["goes"] == true);
}

TEST_CASE("json, safetensors, npz and sharded index: unknown members are errors in strict loads", "[reliability][json]") {
  ckpt_test::TempDir dir;
  {  // .json: the top level and a tensor entry
    const auto p = dir / "a.json";
    save(p, small());
    const auto text = [&] { const auto b = ckpt_test::read_bytes(p); return std::string(b.begin(), b.end()); }();
    for (const auto& [edited, what] : std::vector<std::pair<std::string, std::string>>{
             {with_member(text, "\"junk\":[1,2,3]"), "unknown member 'junk'"},
             {with_member(text, "\"extra\":{}", text.find("\"tensors\"")), "unknown member 'extra' at tensors[0]"}}) {
      INFO(what);
      put(p, B(edited));
      require_refused(p, what);
      require_loads_small(p, lenient());
    }
  }
  {  // safetensors: a tensor's info has exactly dtype, shape and data_offsets
    const auto p = dir / "a.safetensors";
    put(p, safetensors_with(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"junk":[0,0,0]}})"));
    require_refused(p, "unknown member 'junk' at a");
    CHECK(load(p, lenient()).at("a").tensor().values<float>()[3] == 4.0f);
    put(p, safetensors_with(R"({"__metadata__":{"free":"text"},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})"));
    CHECK(load(p).at("a").tensor().values<float>()[3] == 4.0f);  // __metadata__ is free
  }
  {  // npz: the tree member's document
    const auto p = dir / "a.npz";
    const std::string tree = R"({"dict":[["a",{"tensor":"a"}]],"container":"dict"})";
    put(p, npz_with(R"({"format":"ckpt-npz","version":1,"tree":)" + tree + R"(,"junk":1})"));
    require_refused(p, "unknown member 'junk'");
    CHECK(load(p, lenient()).at("a").tensor().values<float>()[3] == 4.0f);
    put(p, npz_with(R"({"format":"ckpt-npz","version":1,"tree":{"dict":[["a",{"tensor":"a","junk":2}]]}})"));
    require_refused(p, "unknown member 'junk' at tree.dict[0][1]");
  }
  {  // sharded safetensors: the index's top level
    const auto d = dir / "sharded";
    safetensors::save_sharded(d, small());
    const auto ip = d / std::string(safetensors::index_name);
    const auto b = ckpt_test::read_bytes(ip);
    put(ip, B(with_member(std::string(b.begin(), b.end()), "\"junk\":[[],[]]")));
    for (const bool strict : {true, false}) {
      LoadOptions o;
      o.strict = strict;
      if (strict) {
        CHECK_THROWS_AS(load_as<safetensors_sharded_format>(d, o), format_error);
      } else {
        CHECK(load_as<safetensors_sharded_format>(d, o).at("a").tensor().values<float>()[3] == 4.0f);
      }
    }
  }
}

TEST_CASE("JSON may take at most a small multiple of its size in memory, in every position", "[reliability][json]") {
  ckpt_test::TempDir dir;
  // A value leaf (free JSON, so no shape refuses it) of 1.5 million empty objects: 4.5 MB of
  // text that nlohmann builds into ~125 MB.
  const auto p = dir / "dense.ckpt";
  save(p, small());
  ckpt_test::rewrite_native_footer_text(p, [](const std::string& t) {
    const auto at = t.find("{\"value\":5}");
    REQUIRE(at != std::string::npos);
    return t.substr(0, at) + "{\"value\":" + json_list("{}", 1'500'000) + "}" + t.substr(at + 11);
  });
  const auto size = fs::file_size(p);
  ckpt_test::largest_allocation() = 0;
  require_refused(p, "bytes of memory (" + std::to_string(detail::json_memory_factor) + " times its size");
  CHECK(ckpt_test::largest_allocation() <= detail::json_memory_factor * size);
  // The manager's index too.
  const auto md = dir / "run";
  fs::create_directories(md);
  put(md / std::string(ManagerIndex::file_name), B(R"({"format":"ckpt-manager-index","version":1,"junk":)" + json_list("{}", 1'500'000) + "}"));
  CHECK_THROWS_AS(ManagerIndex::read(md), format_error);
}

TEST_CASE("real documents stay well below the memory cap", "[reliability][json]") {
  ckpt_test::TempDir dir;
  StateDict sd;  // a wide native table with deep names, and JSON metadata of many small dicts
  for (int i = 0; i < 20000; ++i) sd["model"]["layers"][std::to_string(i)]["weight"] = Tensor::from<float>({1});
  Value log = Value::array();
  for (int i = 0; i < 100000; ++i) log.push_back(Value{{"s", i}, {"l", 0.5}});
  sd["log"] = log;
  for (const char* file : {"wide.ckpt", "wide.json"}) {
    INFO(file);
    const auto p = dir / file;
    save(p, sd);
    const StateDict got = load(p);
    CHECK(got.at("log").value().size() == 100000);
    CHECK(got.at("model.layers.19999.weight").tensor().values<float>()[0] == 1.0f);
  }
}

TEST_CASE("parse_json_checked: shapes by member, position and item, depth, duplicates and memory caps", "[reliability][json]") {
  using detail::JsonShape;
  const JsonShape leaf_obj{};  // an object with no known members
  const JsonShape::Member pair_members[] = {{"k", nullptr}};
  const JsonShape kv{pair_members};
  const JsonShape* const positions[] = {nullptr, &kv};
  const JsonShape row{{}, nullptr, &leaf_obj, positions};  // [any, {"k"}, {}...]
  const JsonShape::Member members[] = {{"rows", &row}, {"free", nullptr}};
  const JsonShape top{members, &kv};  // other members are {"k"} objects
  auto parse = [&](const std::string& text, bool strict) {
    return detail::parse_json_checked(text, "test", "f", 7, {.shape = &top, .strict = strict});
  };
  CHECK(parse(R"({"rows":[{"x":1},{"k":2},{}],"free":{"x":{"y":1}},"other":{"k":3}})", true)["other"]["k"] == 3);
  for (const auto& [text, what] : std::vector<std::pair<std::string, std::string>>{
           {R"({"rows":[1,{"k":2,"x":3}]})", "unknown member 'x' at rows[1]"},
           {R"({"rows":[1,{},{"z":[]}]})", "unknown member 'z' at rows[2]"},
           {R"({"other":{"k":1,"q":1}})", "unknown member 'q' at other"}}) {
    INFO(text);
    try {
      (void)parse(text, true);
      FAIL("parsed");
    } catch (const format_error& e) {
      CHECK(e.path() == "f");
      CHECK(e.offset() == 7);
      CHECK_THAT(e.what(), ckpt_test::Contains(what));
    }
    const Value v = parse(text, false);  // lenient: the unknown member is simply absent
    CHECK(v.dump().find("\"x\"") == std::string::npos);
    CHECK(v.dump().find("\"z\"") == std::string::npos);
    CHECK(v.dump().find("\"q\"") == std::string::npos);
  }
  CHECK_THROWS_WITH(detail::parse_json_checked(R"({"a":1,"a":2})", "t", "f", 0, {.reject_duplicates = true}), ckpt_test::Contains("duplicate key 'a'"));
  CHECK(detail::parse_json_checked(R"({"a":1,"a":2})", "t", "f", 0)["a"] == 2);  // the last wins
  const auto ordered = detail::parse_json_checked<nlohmann::ordered_json>(R"({"b":1,"a":2,"b":3})", "t", "f", 0);
  CHECK(ordered.dump() == R"({"b":3,"a":2})");
  CHECK_THROWS_WITH(detail::parse_json_checked(std::string(40, '[') + std::string(40, ']'), "t", "f", 0, {.max_depth = 39}), ckpt_test::Contains("nested deeper than 39"));
  CHECK(detail::parse_json_checked(std::string(39, '[') + std::string(39, ']'), "t", "f", 0, {.max_depth = 39}).is_array());
  CHECK_THROWS_WITH(detail::parse_json_checked(json_list("[]", 100000), "t", "f", 0, {.memory_factor = 1}), ckpt_test::Contains("bytes of memory"));
  CHECK(detail::parse_json_checked(json_list("[]", 100000), "t", "f", 0).size() == 100000);
}
