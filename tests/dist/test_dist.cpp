// Single-process tests of the distributed layer (no MPI): the box arithmetic (intersection,
// row-major runs against an element-by-element reference, tensor_split), the tiling check's
// errors, the coordinator's planner (balancing, layout, errors naming rank and key),
// ShardedTensor as a Checkpointable, and save/load through SingleProcess with one process
// standing for N saving and M loading ranks.
#include <algorithm>
#include <map>
#include <random>

#include "ckpt_catch.hpp"
#include "dist_cases.hpp"

using namespace ckpt;
using namespace ckpt::dist;
using ckpt_test::Contains;
namespace cases = ckpt_test::dist;

TEST_CASE("box: intersect, box_string, split_box as torch.tensor_split", "[dist]") {
  const Box a{{0, 2}, {4, 3}}, b{{3, 4}, {5, 5}};
  REQUIRE(intersect(a, b).has_value());
  CHECK(*intersect(a, b) == Box{{3, 4}, {1, 1}});
  CHECK_FALSE(intersect(a, Box{{4, 0}, {1, 9}}).has_value());  // touching, no common element
  CHECK_FALSE(intersect(a, Box{{0, 2}, {0, 3}}).has_value());  // empty
  CHECK(intersect(Box{}, Box{}) == Box{});                      // 0-d: the scalar
  CHECK(box_string(a) == "[0:4, 2:5]");
  CHECK(box_string(Box{}) == "[]");
  // tensor_split of 10 into 4: 3, 3, 2, 2
  const Shape g{10, 2};
  CHECK(split_box(g, 0, 0, 4) == Box{{0, 0}, {3, 2}});
  CHECK(split_box(g, 0, 1, 4) == Box{{3, 0}, {3, 2}});
  CHECK(split_box(g, 0, 3, 4) == Box{{8, 0}, {2, 2}});
  CHECK(split_box(g, 1, 3, 4) == Box{{0, 2}, {10, 0}});  // more parts than columns: empty
  CHECK_THROWS_AS(split_box(g, 2, 0, 1), mismatch_error);
  CHECK_THROWS_AS(split_box(g, 0, 4, 4), mismatch_error);
}

TEST_CASE("box: for_each_run maps every element as the element-by-element reference does", "[dist]") {
  std::mt19937 rng(7);
  auto pick = [&](std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); };
  for (int trial = 0; trial < 400; ++trial) {
    const std::size_t d = static_cast<std::size_t>(pick(1, 4));
    Box src, dst;
    for (std::size_t j = 0; j < d; ++j) {
      const auto g = pick(1, 6);
      for (Box* b : {&src, &dst}) {
        const auto o = pick(0, g - 1);
        b->offsets.push_back(o);
        b->shape.push_back(pick(1, g - o));
      }
      if (trial % 3 == 0) dst.offsets[j] = src.offsets[j], dst.shape[j] = src.shape[j];  // whole dims in both
    }
    const auto part = intersect(src, dst);
    if (!part) continue;
    // Reference: element e of part (row-major) is at these positions in src and dst.
    std::map<std::int64_t, std::int64_t> want;
    const auto n = part->numel();
    for (std::int64_t e = 0; e < n; ++e) {
      std::int64_t rest = e, s = 0, t = 0, ss = 1, ts = 1;
      for (std::size_t j = d; j-- > 0;) {
        const auto i = rest % part->shape[j] + part->offsets[j];
        rest /= part->shape[j];
        s += (i - src.offsets[j]) * ss;
        t += (i - dst.offsets[j]) * ts;
        ss *= src.shape[j];
        ts *= dst.shape[j];
      }
      want[s] = t;
    }
    std::map<std::int64_t, std::int64_t> got;
    std::int64_t last = -1;
    for_each_run(*part, src, dst, [&](std::int64_t s, std::int64_t t, std::int64_t k) {
      CHECK(s > last);  // ascending in the source
      last = s;
      for (std::int64_t i = 0; i < k; ++i) got[s + i] = t + i;
    });
    REQUIRE(got == want);
  }
}

TEST_CASE("tiling: exact tilings pass, overlaps, gaps and chunks outside are named", "[dist]") {
  const Shape g{4, 6};
  CHECK_FALSE(tiling_problem(g, {split_box(g, 0, 0, 2), split_box(g, 0, 1, 2)}));
  CHECK_FALSE(tiling_problem(g, {Box{{0, 0}, {4, 2}}, Box{{0, 2}, {2, 4}}, Box{{2, 2}, {2, 4}}, Box{{1, 1}, {0, 3}}}));
  auto overlap = tiling_problem(g, {Box{{0, 0}, {3, 6}}, Box{{2, 0}, {2, 6}}});
  REQUIRE(overlap);
  CHECK_THAT(*overlap, Contains("chunk [0:3, 0:6] overlaps chunk [2:4, 0:6] in [2:3, 0:6]"));
  auto gap = tiling_problem(g, {Box{{0, 0}, {4, 2}}, Box{{0, 2}, {2, 4}}});
  REQUIRE(gap);
  CHECK_THAT(*gap, Contains("elements [2:4, 2:6] are in no chunk (8 of 24 elements are in no chunk)"));
  auto outside = tiling_problem(g, {Box{{0, 0}, {5, 6}}});
  REQUIRE(outside);
  CHECK_THAT(*outside, Contains("leaves the global shape [4, 6]"));
  CHECK_THAT(*tiling_problem(g, {Box{{0}, {4}}}), Contains("does not have the tensor's 2 dimensions"));
  CHECK_THAT(*tiling_problem(g, {Box{{-1, 0}, {1, 6}}}), Contains("leaves the global shape"));
  // 0-d: exactly one chunk; empty tensors: any in-bounds chunks, none included
  CHECK_FALSE(tiling_problem({}, {Box{}}));
  CHECK_THAT(*tiling_problem({}, {Box{}, Box{}}), Contains("overlaps"));
  CHECK_THAT(*tiling_problem({}, {}), Contains("1 of 1 elements are in no chunk"));
  CHECK_FALSE(tiling_problem({0, 4}, {}));
  CHECK_FALSE(tiling_problem({0, 4}, {Box{{0, 0}, {0, 4}}, Box{{0, 0}, {0, 2}}}));
}

namespace {
/// The descriptions ranks 0..n-1 of `states` send the coordinator.
std::vector<Value> described(const std::vector<StateDict>& states) {
  std::vector<Value> v;
  for (const auto& s : states) v.push_back(description(describe(s)));
  return v;
}
StateDict sharded_rows(int rank, int size, Shape g, DType dt = DType::f32) {
  StateDict sd;
  const Box b = split_box(g, 0, rank, size);
  sd["w"] = ShardedTensor(dt, g, {Chunk{b.offsets, Tensor(dt, b.shape)}}).state_dict();
  return sd;
}
}  // namespace

TEST_CASE("planner: replicated tensors balance bytes, chunks lie at aligned offsets", "[dist]") {
  std::vector<StateDict> states(3);
  for (int r = 0; r < 3; ++r) {
    states[r] = sharded_rows(r, 3, {30, 10});  // 400, 400, 400 bytes
    states[r]["big"] = Tensor(DType::f64, {100});  // 800
    states[r]["mid"] = Tensor(DType::f32, {150});  // 600
    states[r]["small"] = Tensor(DType::u8, {10});
    states[r]["v"] = 1;
  }
  const Plan p = make_plan(described(states), describe(states[0]).tree, 64, "dir");
  REQUIRE(p.meta.tensors.size() == 4);
  auto rank_of = [&](const std::string& key) {
    for (const auto& t : p.meta.tensors)
      if (t.key == key) return static_cast<int>(t.chunks.at(0).file);
    return -1;
  };
  CHECK(rank_of("big") == 0);    // all at 400: the lowest rank
  CHECK(rank_of("mid") == 1);    // 1200, 400, 400
  CHECK(rank_of("small") == 2);  // 1200, 1000, 400
  std::uint64_t total = 0;
  for (const auto& t : p.meta.tensors)
    for (const auto& c : t.chunks) {
      CHECK(c.offset % data_alignment == 0);
      CHECK(c.offset + c.nbytes <= p.meta.files[c.file].size);
      total += c.nbytes;
    }
  CHECK(total == 1200 + 800 + 600 + 10);
  CHECK(p.meta.files.size() == 3);
  CHECK(p.meta.files[1].name == "rank-00001.bin");
  for (std::size_t r = 0; r < 3; ++r) CHECK(p.writes[r].size() == p.where[r].size());
}

TEST_CASE("planner: errors name the key, the rank and the gap or overlap", "[dist]") {
  std::vector<StateDict> states = {sharded_rows(0, 3, {6, 2}), sharded_rows(2, 3, {6, 2})};  // rows 2:4 missing
  try {
    make_plan(described(states), describe(states[0]).tree, 64, "ck");
    FAIL("a gap must fail");
  } catch (const ckpt::error& e) {
    CHECK(e.key() == "w");
    CHECK(e.path() == "ck");
    CHECK_THAT(std::string(e.what()), Contains("do not tile it: elements [2:4, 0:2] are in no chunk"));
  }
  states = {sharded_rows(0, 2, {6, 2}), sharded_rows(0, 2, {6, 2})};
  CHECK_THROWS_WITH(make_plan(described(states), describe(states[0]).tree, 64, "ck"), Contains("overlaps chunk [0:3, 0:2] in [0:3, 0:2]"));
  states = {sharded_rows(0, 2, {6, 2}), sharded_rows(1, 2, {6, 2}, DType::f64)};
  CHECK_THROWS_AS(make_plan(described(states), describe(states[0]).tree, 64, "ck"), mismatch_error);
  CHECK_THROWS_WITH(make_plan(described(states), describe(states[0]).tree, 64, "ck"), Contains("dtype differs between rank 0 and rank 1 in 'ck' at 'w': expected f32, got f64"));
  states = {sharded_rows(0, 2, {6, 2}), sharded_rows(1, 2, {6, 2})};
  states[1]["extra"] = Tensor(DType::f32, {1});
  CHECK_THROWS_WITH(make_plan(described(states), describe(states[0]).tree, 64, "ck"), Contains("rank 1 holds a tensor rank 0 does not in 'ck' at 'extra'"));
  states[0]["extra"] = Tensor(DType::f32, {1});
  states[0]["more"] = Tensor(DType::f32, {1});
  CHECK_THROWS_WITH(make_plan(described(states), describe(states[0]).tree, 64, "ck"), Contains("rank 1 lacks a tensor rank 0 holds in 'ck' at 'more'"));
  // Replicated tensors must be equal on every rank (unless the check is off).
  states = {sharded_rows(0, 2, {6, 2}), sharded_rows(1, 2, {6, 2})};
  states[0]["b"] = Tensor::from<float>({1, 2});
  states[1]["b"] = Tensor::from<float>({1, 3});
  CHECK_THROWS_WITH(make_plan(described(states), describe(states[0]).tree, 64, "ck"), Contains("replicated tensor's value differs between rank 0 and rank 1 in 'ck' at 'b': expected CRC-32"));
  const std::vector<Value> unchecked = {description(describe(states[0]), false), description(describe(states[1]), false)};
  CHECK_NOTHROW(make_plan(unchecked, describe(states[0]).tree, 64, "ck"));
}

namespace {
struct Layer {
  ShardedTensor weight;
  Tensor bias;
  int step = 0;
};
CKPT_FIELDS(Layer, weight, bias, step)
struct BiasOnly {
  Tensor bias{DType::f32, {3}};
  int step = 0;
};
CKPT_FIELDS(BiasOnly, bias, step)
}  // namespace

TEST_CASE("ShardedTensor: a Checkpointable member, its node round-trips through ckpt::save", "[dist]") {
  ckpt_test::TempDir dir;
  const Shape g{4, 3};
  Layer a{ShardedTensor(DType::f32, g), ckpt_test::random_tensor(DType::f32, {3}, 1), 5};
  const Box b = split_box(g, 0, 1, 2);
  a.weight.add_chunk({b.offsets, ckpt_test::random_tensor(DType::f32, b.shape, 2)});
  CHECK_THROWS_AS(a.weight.add_chunk({{3, 0}, Tensor(DType::f32, {2, 3})}), mismatch_error);  // leaves [4, 3]
  CHECK_THROWS_AS(a.weight.add_chunk({{0, 0}, Tensor(DType::f64, {1, 3})}), mismatch_error);
  ckpt::save(dir / "l.ckpt", a);
  Layer c{ShardedTensor::zeros(DType::f32, g, {b}), Tensor(DType::f32, {3}), 0};
  const Tensor alias = c.weight.chunks()[0].data;  // shares the chunk's bytes
  ckpt::load_into(dir / "l.ckpt", c);
  CHECK(c.step == 5);
  CHECK(c.bias == a.bias);
  CHECK(alias == a.weight.chunks()[0].data);  // loaded into the same memory
  Layer wrong{ShardedTensor::zeros(DType::f32, {4, 4}, {}), Tensor(DType::f32, {3}), 0};
  CHECK_THROWS_WITH(ckpt::load_into(dir / "l.ckpt", wrong), Contains("global shape mismatch") && Contains("at 'weight'"));
}

TEST_CASE("SingleProcess: a save of N virtual ranks loads in any other chunking, bit for bit", "[dist]") {
  ckpt_test::TempDir dir;
  for (int n : {1, 3}) {
    const auto ck = dir / ("n" + std::to_string(n));
    SingleProcess one;
    save(one, ck, cases::state(0, cases::all_ranks(n), n), {.fsync = false, .crc_block_bytes = 16});
    CHECK(cases::check_global(load_global(ck)) == "");
    for (int m : {1, 2, 4}) {
      INFO("N=" << n << " M=" << m);
      const StateDict got = load_state(one, ck, cases::state(1, cases::all_ranks(m), m, true));
      CHECK(cases::check_loaded(got, 1, cases::all_ranks(m), m) == "");
    }
  }
}

TEST_CASE("a single-file checkpoint loads onto M virtual ranks in any chunking", "[dist]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  for (const char* name : {"g.ckpt", "g.safetensors"}) {
    ckpt::save(dir / name, cases::global_state());
    for (int m : {1, 3}) {
      INFO(name << " M=" << m);
      const StateDict got = load_state(one, dir / name, cases::state(1, cases::all_ranks(m), m, true));
      CHECK(cases::check_loaded(got, 1, cases::all_ranks(m), m) == "");
    }
  }
  // A sharded node saved in a single file must tile its tensor too.
  StateDict bad;
  bad["w"] = ShardedTensor(DType::f32, {4}, {Chunk{{0}, Tensor(DType::f32, {2})}}).state_dict();
  ckpt::save(dir / "bad.ckpt", bad);
  StateDict req;
  req["w"] = ShardedTensor::zeros(DType::f32, {4}, {Box{{0}, {4}}}).state_dict();
  CHECK_THROWS_WITH(load_state(one, dir / "bad.ckpt", req), Contains("elements [2:4] are in no chunk") && Contains("at 'w'"));
}

TEST_CASE("load reads only the CRC blocks holding the requested elements", "[dist]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  const Shape g{64, 16};
  const Tensor global = ckpt_test::random_tensor(DType::f32, g, 3);
  StateDict sd;
  sd["w"] = ShardedTensor(DType::f32, g, {Chunk{{0, 0}, global}}).state_dict();
  save(one, dir / "ck", sd, {.fsync = false, .crc_block_bytes = 256});  // 4 rows a block
  auto read_box = [&](const Box& b) {
    StateDict req;
    req["w"] = ShardedTensor::zeros(DType::f32, g, {b}).state_dict();
    LoadStats st;
    const StateDict got = load_state(one, dir / "ck", req, {}, &st);
    CHECK(ShardedTensor::from_state_dict(got.at("w")).chunks()[0].data == ckpt_test::dist::extract(global, b));
    return st;
  };
  CHECK(read_box({{8, 0}, {8, 16}}).bytes_read == 512);    // rows 8..16: blocks 2 and 3
  CHECK(read_box({{9, 0}, {1, 16}}).bytes_read == 256);    // one row: its block
  CHECK(read_box({{0, 3}, {64, 2}}).bytes_read == 4096);   // a column slice touches every block
  CHECK(read_box({{0, 0}, {64, 16}}).reads == 1);          // the whole chunk: one read

  // Runs far apart: rows 0..2 of each of 4 slabs of 8 rows (2 blocks a slab) need one block
  // of each slab, read separately; the blocks between are not read.
  const Shape g3{4, 8, 16};
  const Tensor v = ckpt_test::random_tensor(DType::f32, g3, 5);
  StateDict sd3;
  sd3["v"] = ShardedTensor(DType::f32, g3, {Chunk{{0, 0, 0}, v}}).state_dict();
  save(one, dir / "ck3", sd3, {.fsync = false, .crc_block_bytes = 256});
  StateDict req;
  const Box slab_tops{{0, 0, 0}, {4, 2, 16}};
  req["v"] = ShardedTensor::zeros(DType::f32, g3, {slab_tops}).state_dict();
  LoadStats st;
  const StateDict got = load_state(one, dir / "ck3", req, {}, &st);
  CHECK(ShardedTensor::from_state_dict(got.at("v")).chunks()[0].data == ckpt_test::dist::extract(v, slab_tops));
  CHECK(st.bytes_read == 4 * 256);
  CHECK(st.reads == 4);
}

TEST_CASE("load(comm, dir, object): a Checkpointable with ShardedTensors, reported like load_into", "[dist]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  const Shape g{4, 3};
  const Tensor global = ckpt_test::random_tensor(DType::f32, g, 9);
  Layer a{ShardedTensor(DType::f32, g, {Chunk{{0, 0}, global}}), ckpt_test::random_tensor(DType::f32, {3}, 4), 7};
  save(one, dir / "ck", a, {.fsync = false});
  Layer b{ShardedTensor::zeros(DType::f32, g, {split_box(g, 1, 0, 2), split_box(g, 1, 1, 2)}), Tensor(DType::f32, {3}), 0};
  CHECK(load(one, dir / "ck", b).ok());
  CHECK(b.step == 7);
  CHECK(b.bias == a.bias);
  CHECK(b.weight.chunks()[1].data == ckpt_test::dist::extract(global, split_box(g, 1, 1, 2)));
  StateDict only_bias;
  only_bias["bias"] = Tensor(DType::f32, {3});
  LoadStats st;
  const StateDict got = load_state(one, dir / "ck", only_bias, {}, &st);
  CHECK_FALSE(got.contains("weight"));
  CHECK(st.bytes_read == 12);  // the bias alone: the weight is not read
  BiasOnly c;
  CHECK_THROWS_WITH(load(one, dir / "ck", c), Contains("unexpected: weight"));
  LoadOptions lenient;
  lenient.strict = false;
  const LoadReport r = load(one, dir / "ck", c, lenient);
  CHECK(r.unexpected == std::vector<std::string>{"weight"});
  CHECK(c.bias == a.bias);
  // Another global shape: mismatch_error naming the key, or with skip_mismatched a report.
  Layer wider{ShardedTensor::zeros(DType::f32, {4, 4}, {Box{{0, 0}, {4, 4}}}), Tensor(DType::f32, {3}), 0};
  CHECK_THROWS_WITH(load(one, dir / "ck", wider), Contains("global shape mismatch") && Contains("at 'weight': expected [4, 4], got [4, 3]"));
  LoadOptions skip;
  skip.skip_mismatched = true;
  const LoadReport rs = load(one, dir / "ck", wider, skip);
  CHECK(rs.mismatched == std::vector<std::string>{"weight (expected [4, 4], got [4, 3])"});
  CHECK(wider.step == 7);
}

namespace {
/// A communicator of a user's own engine, here one where rank 1 of 2 always fails: shows the
/// concept is pluggable and how collective_step reports another rank's failure.
struct OtherRankFails {
  int rank() const { return 0; }
  int size() const { return 2; }
  void barrier() {}
  void broadcast(Bytes&, int) {}
  std::vector<Bytes> gather(std::span<const std::byte> in, int) { return {Bytes(in.begin(), in.end()), {}}; }
  std::vector<Bytes> allgather(std::span<const std::byte> in) { return gather(in, 0); }
  Bytes scatter(const std::vector<Bytes>& parts, int) { return parts.at(0); }
  Status all_reduce_status(const Status& mine) { return mine.ok() ? Status{1, "ckpt: cannot write in '/d/x.bin'"} : mine; }
};
static_assert(Communicator<OtherRankFails>);
}  // namespace

TEST_CASE("collective_step: another rank's failure is a rank_error with its rank and message", "[dist]") {
  OtherRankFails comm;
  bool ran = false;
  try {
    collective_step(comm, "/d", [&] { ran = true; });
    FAIL("no error");
  } catch (const rank_error& e) {
    CHECK(ran);
    CHECK(e.rank() == 1);
    CHECK(e.path() == "/d");
    CHECK(std::string(e.what()) == "ckpt: rank 1 failed: cannot write in '/d/x.bin' in '/d'");
  }
  // The lowest failing rank's own exception stays what it was (here rank 0 fails first).
  CHECK_THROWS_AS(collective_step(comm, "/d", [] { throw key_error("boom"); }), key_error);
}
