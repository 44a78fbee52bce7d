// Bad-input tests per reader: truncation at every length, wrong magic, flipped checksums,
// absurd sizes, hostile trees — each must raise the specific exception type, never crash.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>

#include "test_util.hpp"
#include "truncation.hpp"

using namespace ckpt;

namespace {
StateDict small() {
  StateDict sd;
  sd["a"] = Tensor::from<float>({1, 2, 3, 4}, {2, 2});
  sd["b.c"] = Tensor::from<std::int64_t>({7});
  sd["n"] = 5;
  return sd;
}
}  // namespace

TEST_CASE("native: truncation at every length is a format_error with the offset", "[formats][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "t.ckpt";
  save(p, small());
  ckpt_test::require_truncations_fail(ckpt_test::read_bytes(p), dir / "cut.ckpt", [](const auto& q) { return load_as<native_format>(q); });
}

TEST_CASE("native: wrong magic is a format_error, unknown files list the known formats", "[formats][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "m.ckpt";
  save(p, small());
  auto b = ckpt_test::read_bytes(p);
  b[1] = 'X';
  ckpt_test::write_bytes(p, b);
  CHECK_THROWS_AS(load_as<native_format>(p), format_error);
  try {
    load(p);
    FAIL();
  } catch (const format_error& e) {
    CHECK(std::string(e.what()).find("unknown file format (known: native .ckpt, json .json") != std::string::npos);
    CHECK(e.path() == p.string());
  }
}

TEST_CASE("native: a flipped payload byte raises corrupt_error naming the tensor", "[formats][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "c.ckpt";
  save(p, small());
  auto b = ckpt_test::read_bytes(p);
  b[64 + 5] ^= 0x10;  // inside tensor "a" (the first payload, at offset 64)
  ckpt_test::write_bytes(p, b);
  try {
    load(p);
    FAIL();
  } catch (const corrupt_error& e) {
    CHECK(e.key() == "a");
    CHECK(e.path() == p.string());
  }
  CHECK_THROWS_AS(verify(p), corrupt_error);
  LoadOptions m;
  m.mmap = true;
  CHECK_NOTHROW(load(p, m));  // mmap skips checksums unless asked
  m.verify = true;
  CHECK_THROWS_AS(load(p, m), corrupt_error);
}

TEST_CASE("native: a flipped footer byte raises corrupt_error", "[formats][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "f.ckpt";
  save(p, small());
  auto b = ckpt_test::read_bytes(p);
  b[b.size() - 40] ^= 0x01;  // inside the footer JSON
  ckpt_test::write_bytes(p, b);
  CHECK_THROWS_AS(load(p), corrupt_error);
}

TEST_CASE("native: absurd sizes and hostile tables are format_errors without big allocations", "[formats][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "h.ckpt";
  auto check = [&](const std::function<void(Value&)>& edit) {
    save(p, small());
    ckpt_test::rewrite_native_footer(p, edit);
    CHECK_THROWS_AS(load(p), format_error);
  };
  check([](Value& f) { f["tensors"][0]["shape"] = {std::int64_t{1} << 62}; });  // 2^62 elements
  check([](Value& f) { f["tensors"][0]["shape"] = {std::int64_t{1} << 31, std::int64_t{1} << 31}; f["tensors"][0]["nbytes"] = 0; });
  check([](Value& f) { f["tensors"][0]["offset"] = 1u << 30; });                  // outside the file
  check([](Value& f) { f["tensors"][0]["offset"] = 65; });                        // misaligned
  check([](Value& f) { f["tensors"][1]["offset"] = f["tensors"][0]["offset"]; });  // overlap
  check([](Value& f) { f["tensors"][0]["dtype"] = "f128"; });
  check([](Value& f) { f["tensors"][0]["codec"] = "lz4"; f["tensors"][0]["stored_nbytes"] = 4; });
  check([](Value& f) { f["tensors"][0].erase("crc32"); });
  check([](Value& f) { f["tree"] = Value{{"tensor", 99}}; });
  check([](Value& f) { f["tree"] = Value{{"dict", {{"a", {{"tensor", 0}}}, {"a", {{"tensor", 1}}}}}}; });  // duplicate key
  check([](Value& f) {
    Value deep = Value{{"value", 1}};
    for (int i = 0; i < 300; ++i) deep = Value{{"dict", Value::array({Value::array({"k", deep})})}};
    f["tree"] = deep;
  });
  check([](Value& f) { f["format"] = "other"; });
  check([](Value& f) { f["format"] = Value::array({1, 2}); });  // another type: not nlohmann's type_error
  // Numbers that nlohmann's get<T>() would cast with undefined behaviour (see the JSON case).
  check([](Value& f) { f["tensors"][0]["shape"] = {2.2e69}; });
  check([](Value& f) { f["tensors"][0]["shape"] = {2.0, 2.0}; });  // floats are not dimensions here
  check([](Value& f) { f["tensors"][0]["offset"] = 1e300; });
  check([](Value& f) { f["tensors"][0]["nbytes"] = -16; });
  check([](Value& f) { f["tensors"][0]["crc32"] = std::uint64_t{1} << 40; });
}

TEST_CASE("native: a trailer pointing outside the file is a format_error", "[formats][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "tr.ckpt";
  save(p, small());
  auto b = ckpt_test::read_bytes(p);
  const std::uint64_t huge = std::uint64_t{1} << 62;
  std::memcpy(b.data() + b.size() - 24, &huge, 8);
  ckpt_test::write_bytes(p, b);
  CHECK_THROWS_AS(load(p), format_error);
}

TEST_CASE("json: malformed documents raise format_error", "[formats][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "j.json";
  auto write = [&](const std::string& s) { ckpt_test::write_bytes(p, std::vector<char>(s.begin(), s.end())); };
  save(p, small());
  const auto full = ckpt_test::read_bytes(p);
  for (std::size_t n = 0; n + 1 < full.size(); n += 7) {
    ckpt_test::write_bytes(p, std::vector<char>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
    REQUIRE_THROWS_AS(load_as<json_format>(p), ckpt::error);
  }
  write(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[2],"data":"AAAA"}]})");
  CHECK_THROWS_AS(load(p), format_error);  // 3 bytes for 8
  write(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[2],"data":"!!!!"}]})");
  CHECK_THROWS_AS(load(p), format_error);
  write(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[4611686018427387904],"data":""}]})");
  CHECK_THROWS_AS(load(p), format_error);
  write(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[2,2],"data":[[1,2],[3,4]]}]})");
  StateDict sd = load(p);  // nested lists are accepted
  CHECK(sd.at("a").tensor().values<float>()[3] == 4.0f);
  write(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[3],"data":[1,2]}]})");
  CHECK_THROWS_AS(load(p), format_error);
  write(std::string(100000, '[') + std::string(100000, ']'));
  CHECK_THROWS_AS(load_as<json_format>(p), format_error);
  // Fuzzer finding (tests/fuzz/corpus/json/regression-format-not-a-string.json): a "format"
  // member of another type escaped as nlohmann's type_error instead of a ckpt::error.
  for (const char* doc : {R"({"format":[{"a":1}],"tensors":[]})", R"({"format":7,"tensors":[]})", R"({"format":null})"}) {
    write(doc);
    CHECK_THROWS_AS(load_as<json_format>(p), format_error);
  }
  // Fuzzer finding (regression-float-shape-out-of-range.json): a shape dimension of 2.2e69 was
  // cast to int64 by nlohmann's get<>() — undefined behaviour (UBSan). Numbers are now checked
  // for type and range: in shapes, and in list data for the tensor's dtype.
  for (const char* doc : {R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[3,2.2e69],"data":""}]})",
                          R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[2.5],"data":[1,2]}]})",
                          R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"i8","shape":[1],"data":[300]}]})",
                          R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"i64","shape":[1],"data":[1e300]}]})",
                          R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"u32","shape":[1],"data":[-1]}]})",
                          R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"i32","shape":[1],"data":[1.5]}]})",
                          R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"f32","shape":[1],"data":[1e300]}]})",
                          R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"bool","shape":[1],"data":[2]}]})"}) {
    INFO(doc);
    write(doc);
    CHECK_THROWS_AS(load_as<json_format>(p), format_error);
  }
  write(R"({"format":"ckpt-json","tensors":[{"key":["a"],"dtype":"i32","shape":[3],"data":[-2147483648,3.0,true]}]})");
  const StateDict ok = load_as<json_format>(p);  // integral floats and booleans still convert exactly
  CHECK(ok.at("a").tensor() == Tensor::from<std::int32_t>({INT32_MIN, 3, 1}));
}
