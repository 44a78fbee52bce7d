// The distributed checkpoint directory as files: the layout a save leaves, hostile metadata
// (overlapping chunks, gaps, chunks outside the shape or past a file's end, bad members) read as
// format_errors naming the key, a damaged data byte as a corrupt_error, and failed saves (a write
// error, a plan error) that leave the previous checkpoint intact and no temporary behind.
#include <cerrno>

#include "ckpt_catch.hpp"
#include "dist_cases.hpp"

using namespace ckpt;
using namespace ckpt::dist;
using ckpt_test::Contains;

namespace {
StateDict small_state(std::uint64_t seed) {
  StateDict sd;
  const Shape g{4, 3};
  const Tensor global = ckpt_test::random_tensor(DType::f32, g, seed);
  ShardedTensor w(DType::f32, g);
  for (int r = 0; r < 2; ++r) {
    const Box b = split_box(g, 0, r, 2);
    w.add_chunk({b.offsets, ckpt_test::dist::extract(global, b)});
  }
  sd["w"] = w.state_dict();
  sd["b"] = ckpt_test::random_tensor(DType::i64, {5}, seed + 1);
  sd["epoch"] = static_cast<int>(seed);
  return sd;
}
StateDict global_of(const StateDict& sd) {
  StateDict g = sd;
  const auto w = ShardedTensor::from_state_dict(sd.at("w"));
  Tensor whole(DType::f32, w.global_shape());
  std::memcpy(whole.mutable_data(), w.chunks()[0].data.data(), w.chunks()[0].data.nbytes());
  std::memcpy(whole.mutable_data() + w.chunks()[0].data.nbytes(), w.chunks()[1].data.data(), w.chunks()[1].data.nbytes());
  g["w"] = whole;
  return g;
}
void edit_metadata(const std::filesystem::path& dir, const std::function<void(Value&)>& edit) {
  const auto p = dir / metadata_name;
  const auto bytes = ckpt_test::read_bytes(p);
  Value doc = Value::parse(std::string(bytes.begin(), bytes.end()));
  edit(doc);
  const std::string text = doc.dump();
  ckpt_test::write_bytes(p, std::vector<char>(text.begin(), text.end()));
}
bool has_temporary(const std::filesystem::path& parent) {
  for (const auto& e : std::filesystem::directory_iterator(parent))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("dist save: the directory holds metadata.json and one data file per rank", "[dist]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  const StateDict sd = small_state(1);
  save(one, dir / "ck", sd);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir / "ck")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"metadata.json", "rank-00000.bin"});
  const Metadata m = read_metadata(dir / "ck");
  REQUIRE(m.tensors.size() == 2);
  CHECK(m.tensors[0].key == "w");
  CHECK(m.tensors[0].chunks.size() == 2);
  CHECK(m.tensors[0].chunks[1].offset == 64);  // 24 bytes, then aligned
  CHECK(m.files[0].size == 128 + 40);
  CHECK(load_global(dir / "ck") == global_of(sd));
  // A trailing slash names the same directory; its temporary is beside it, not inside.
  const StateDict next = small_state(7);
  save(one, (dir / "ck").string() + "/", next);
  CHECK(load_global(dir / "ck") == global_of(next));
  CHECK(dir.list() == std::vector<std::string>{"ck"});
}

TEST_CASE("dist load: hostile metadata is a format_error naming the key, never a bad read", "[dist]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  const auto ck = dir / "ck";
  auto expect = [&](const std::function<void(Value&)>& edit, const std::string& message, const std::string& key) {
    save(one, ck, small_state(2), {.fsync = false});
    edit_metadata(ck, edit);
    INFO(message);
    try {
      (void)load_global(ck);
      FAIL("no error");
    } catch (const format_error& e) {
      CHECK_THAT(std::string(e.what()), Contains(message));
      CHECK(e.key() == key);
      CHECK(e.path() == (key.empty() && message.find("shorter") != std::string::npos ? (ck / "rank-00000.bin").string() : (ck / "metadata.json").string()));
    }
  };
  auto chunk = [](Value& d, int i) -> Value& { return d["tensors"][0]["chunks"][i]; };
  expect([&](Value& d) { chunk(d, 1)["offsets"] = {1, 0}; }, "chunks do not tile the tensor: chunk [0:2, 0:3] overlaps chunk [1:3, 0:3]", "w");
  expect([&](Value& d) { d["tensors"][0]["chunks"].erase(1); }, "elements [2:4, 0:3] are in no chunk", "w");
  expect([&](Value& d) { chunk(d, 1)["shape"] = {3, 3}; }, "leaves the global shape [4, 3]", "w");
  expect([&](Value& d) { chunk(d, 1)["offset"] = 160; }, "is past the end of 'rank-00000.bin' (168 bytes)", "w");
  expect([&](Value& d) { chunk(d, 1)["offset"] = ~std::uint64_t{0}; }, "is past the end of", "w");
  expect([&](Value& d) { chunk(d, 1)["file"] = 1; }, "chunk file index 1 past the 1 files", "w");
  expect([&](Value& d) { chunk(d, 1)["crc32"].push_back(0); }, "needs 1 CRC-32 values", "w");
  expect([&](Value& d) { chunk(d, 1)["offsets"] = {2.5, 0}; }, "invalid chunk offsets", "w");
  expect([&](Value& d) { d["tensors"][0]["dtype"] = "f33"; }, "invalid dtype \"f33\"", "w");
  expect([&](Value& d) { d["tensors"][0]["shape"] = {4, -3}; }, "invalid shape -3", "w");
  expect([&](Value& d) { d["tensors"][1]["key"] = "w"; }, "duplicate tensor key", "w");
  expect([&](Value& d) { d["files"][0]["name"] = "../x"; }, "must be a plain file name", "");
  expect([&](Value& d) { d["files"][0]["size"] = 10000; }, "data file shorter than the metadata says", "");
  expect([&](Value& d) { d["format"] = "other"; }, "not a distributed checkpoint", "");
  expect([&](Value& d) { d["extra"] = 1; }, "unknown member 'extra'", "");
  expect([&](Value& d) { d["tree"]["dict"][0][1]["tensor"] = 7; }, "tensor index out of range", "w");
}

TEST_CASE("dist load: a changed data byte is a corrupt_error naming file and key", "[dist]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  save(one, dir / "ck", small_state(3), {.fsync = false});
  const auto data = dir / "ck" / "rank-00000.bin";
  CHECK_NOTHROW(ckpt::dist::verify(dir / "ck"));
  auto bytes = ckpt_test::read_bytes(data);
  bytes[70] ^= 1;  // in w's second chunk
  ckpt_test::write_bytes(data, bytes);
  CHECK_THROWS_WITH(ckpt::dist::verify(dir / "ck"), Contains("checksum mismatch in chunk [2:4, 0:3] at bytes 64+24") && Contains("at 'w'"));
  try {
    (void)load_global(dir / "ck");
    FAIL("no error");
  } catch (const corrupt_error& e) {
    CHECK(e.key() == "w");
    CHECK(e.path() == data.string());
    CHECK_THAT(std::string(e.what()), Contains("checksum mismatch in chunk [2:4, 0:3]"));
  }
  // A request that does not touch the damaged chunk reads and verifies only its own blocks.
  StateDict req;
  req["w"] = ShardedTensor::zeros(DType::f32, {4, 3}, {split_box({4, 3}, 0, 0, 2)}).state_dict();
  CHECK_NOTHROW(load_state(one, dir / "ck", req));
  LoadOptions unchecked;
  unchecked.verify = false;
  CHECK_NOTHROW(load_global(dir / "ck", unchecked));
}

TEST_CASE("dist save: a failed write or plan leaves the previous checkpoint and no temporary", "[dist]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  const auto ck = dir / "ck";
  const StateDict first = small_state(4);
  save(one, ck, first);
  io::write_fault_hook() = [](const std::string& p, std::uint64_t, std::size_t) { return p.find("rank-00000.bin") != std::string::npos ? EIO : 0; };
  CHECK_THROWS_AS(save(one, ck, small_state(5)), io_error);
  io::write_fault_hook() = nullptr;
  CHECK_FALSE(has_temporary(dir.path()));
  CHECK(load_global(ck) == global_of(first));

  StateDict overlapping = small_state(6);
  auto w = ShardedTensor::from_state_dict(overlapping.at("w"));
  w.add_chunk({{1, 0}, Tensor(DType::f32, {1, 3})});
  overlapping["w"] = w.state_dict();
  CHECK_THROWS_WITH(save(one, ck, overlapping), Contains("overlaps"));
  CHECK_FALSE(has_temporary(dir.path()));
  CHECK(load_global(ck) == global_of(first));
}
