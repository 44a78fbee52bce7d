// ckpt::dist::CheckpointManager in one process (SingleProcess): numbering, retention and the
// index, the refusal of a step that exists, the lock, the cleanup of an interrupted save, a
// resharding restore (saved in one chunking, restored into another), and the fall-back past a
// checkpoint whose data or metadata is damaged, marked corrupt in the index. Across real ranks:
// tests/dist/dist_mpi_tool.cpp (mode manager) and example.train_dist.resharded_resume.
#include <cerrno>

#include "ckpt_catch.hpp"
#include "dist_cases.hpp"

using namespace ckpt;
using namespace ckpt::dist;
using ckpt_test::Contains;

namespace {
/// What one process holds: a [6, 3] weight in `parts` row chunks, a replicated bias, an epoch.
struct Model {
  ShardedTensor weight;
  Tensor bias;
  int epoch = 0;
};
CKPT_FIELDS(Model, weight, bias, epoch)

/// The same with one more tensor.
struct Wider {
  ShardedTensor weight;
  Tensor bias;
  int epoch = 0;
  Tensor extra;
};
CKPT_FIELDS(Wider, weight, bias, epoch, extra)

const Shape kShape{6, 3};

Model make(int parts) {
  std::vector<Box> boxes;
  for (int p = 0; p < parts; ++p) boxes.push_back(split_box(kShape, 0, p, parts));
  return {ShardedTensor::zeros(DType::f32, kShape, boxes), Tensor(DType::f32, {3}), 0};
}
/// Global element i of the weight at `epoch`.
float value(int epoch, std::int64_t i) { return static_cast<float>(epoch * 100 + i); }
void set_epoch(Model& m, int epoch) {
  m.epoch = epoch;
  for (auto& c : m.weight.chunks()) {
    auto v = c.data.mutable_values<float>();
    for (std::size_t j = 0; j < v.size(); ++j) v[j] = value(epoch, c.offsets[0] * kShape[1] + static_cast<std::int64_t>(j));
  }
  for (auto& b : m.bias.mutable_values<float>()) b = static_cast<float>(-epoch);
}
/// Whether every element of `m` holds epoch `epoch`'s values.
bool holds(const Model& m, int epoch) {
  if (m.epoch != epoch) return false;
  for (const auto& c : m.weight.chunks()) {
    const auto v = c.data.values<float>();
    for (std::size_t j = 0; j < v.size(); ++j)
      if (v[j] != value(epoch, c.offsets[0] * kShape[1] + static_cast<std::int64_t>(j))) return false;
  }
  for (const auto b : m.bias.values<float>())
    if (b != static_cast<float>(-epoch)) return false;
  return true;
}
std::vector<std::int64_t> steps(const std::vector<CheckpointInfo>& v) {
  std::vector<std::int64_t> s;
  for (const auto& e : v) s.push_back(e.step);
  return s;
}
dist::ManagerOptions fast(std::size_t keep = 2) {
  dist::ManagerOptions o;
  o.max_to_keep = keep;
  o.save_options.fsync = false;
  return o;
}
}  // namespace

TEST_CASE("dist manager: numbered checkpoints, retention and an index every rank shares", "[dist][manager]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  Model m = make(1);
  dist::CheckpointManager mgr(one, dir / "run", m, fast());
  CHECK_FALSE(mgr.latest_step().has_value());
  CHECK(mgr.should_save(1));
  for (int e = 1; e <= 4; ++e) {
    set_epoch(m, e);
    CHECK(mgr.save(e, {{"loss", 1.0 / e}}) == dir / "run" / ("ckpt-" + std::to_string(e)));
  }
  CHECK(steps(mgr.checkpoints()) == std::vector<std::int64_t>{3, 4});
  CHECK(mgr.latest_step() == 4);
  CHECK_FALSE(std::filesystem::exists(dir / "run" / "ckpt-2"));
  CHECK(std::filesystem::exists(dir / "run" / "ckpt-4" / metadata_name));
  const auto ix = ManagerIndex::read(dir / "run");
  CHECK(steps(ix.entries) == std::vector<std::int64_t>{3, 4});
  CHECK(ix.entries[1].format == "dist");
  CHECK(ix.entries[1].metrics.at("loss") == 0.25);

  // A step that exists is refused, and the checkpoint stays as it was.
  set_epoch(m, 9);
  try {
    mgr.save(4);
    FAIL("no error");
  } catch (const io_error& e) {
    CHECK(e.code() == EEXIST);
    CHECK_THAT(std::string(e.what()), Contains("step 4 already exists"));
  }
  CHECK_THROWS_AS(mgr.save(-1), error);
  Model back = make(1);
  SingleProcess other;
  (void)load(other, dir / "run" / "ckpt-4", back);
  CHECK(holds(back, 4));

  // The directory is locked while the manager lives.
  Model m2 = make(1);
  CHECK_THROWS_WITH(dist::CheckpointManager(one, dir / "run", m2, fast()), Contains("locked by another CheckpointManager"));
}

TEST_CASE("dist manager: a new process restores the newest into another chunking and cleans up a killed save", "[dist][manager]") {
  ckpt_test::TempDir dir;
  {
    SingleProcess one;
    Model m = make(1);
    dist::CheckpointManager mgr(one, dir / "run", m, fast(3));
    for (int e = 1; e <= 3; ++e) {
      set_epoch(m, e);
      mgr.save(e);
    }
  }
  // What a save killed before its commit leaves: a temporary beside the checkpoints.
  std::filesystem::create_directories(dir / "run" / "ckpt-4.tmp-abcdef");
  ckpt_test::write_bytes(dir / "run" / "ckpt-4.tmp-abcdef" / "rank-00000.bin", std::vector<char>(10, 'x'));

  SingleProcess one;
  Model r = make(3);  // three chunks where the save had one
  dist::CheckpointManager mgr(one, dir / "run", r, fast(3));
  CHECK_FALSE(std::filesystem::exists(dir / "run" / "ckpt-4.tmp-abcdef"));
  CHECK(steps(mgr.checkpoints()) == std::vector<std::int64_t>{1, 2, 3});
  CHECK(mgr.restore_or_initialize() == 3);
  CHECK(holds(r, 3));
  REQUIRE(mgr.last_restore().has_value());
  CHECK(mgr.last_restore()->ok());
}

TEST_CASE("dist manager: an object with keys the checkpoint lacks is a key_error unless partial restores are allowed", "[dist][manager]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  {
    Model m = make(1);
    set_epoch(m, 5);
    dist::CheckpointManager mgr(one, dir / "run", m, fast());
    mgr.save(5);
  }
  Model base = make(2);
  Wider w{base.weight, base.bias, 0, Tensor(DType::f32, {2})};
  {
    dist::CheckpointManager mgr(one, dir / "run", w, fast());
    CHECK_THROWS_WITH(mgr.restore_or_initialize(), Contains("extra") && Contains("ckpt-5"));
  }
  dist::ManagerOptions partial = fast();
  partial.partial_restore = true;
  dist::CheckpointManager mgr(one, dir / "run", w, partial);
  CHECK(mgr.restore_or_initialize() == 5);
  CHECK(holds(Model{w.weight, w.bias, w.epoch}, 5));
  REQUIRE(mgr.last_restore().has_value());
  CHECK(mgr.last_restore()->missing == std::vector<std::string>{"extra"});
}

TEST_CASE("dist manager: a damaged checkpoint is skipped on restore, marked corrupt, and the previous one restored", "[dist][manager]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  {
    Model m = make(2);
    dist::CheckpointManager mgr(one, dir / "run", m, fast(3));
    for (int e = 1; e <= 3; ++e) {
      set_epoch(m, e);
      mgr.save(e);
    }
  }
  SECTION("a flipped data byte") {
    const auto data = dir / "run" / "ckpt-3" / "rank-00000.bin";
    auto bytes = ckpt_test::read_bytes(data);
    bytes[8] ^= 0x40;  // in the weight's first chunk
    ckpt_test::write_bytes(data, bytes);
  }
  SECTION("a truncated data file") {
    const auto data = dir / "run" / "ckpt-3" / "rank-00000.bin";
    std::filesystem::resize_file(data, 4);
  }
  SECTION("damaged metadata") {
    ckpt_test::write_bytes(dir / "run" / "ckpt-3" / metadata_name, std::vector<char>{'{', '"'});
  }
  std::vector<VerifyFailure> failures;
  dist::ManagerOptions o = fast(3);
  o.on_verify_failure = [&](const VerifyFailure& f) { failures.push_back(f); };
  Model r = make(1);
  dist::CheckpointManager mgr(one, dir / "run", r, o);
  CHECK(mgr.restore_or_initialize() == 2);
  CHECK(holds(r, 2));
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].step == 3);
  CHECK(failures[0].marked_corrupt);
  CHECK_THAT(failures[0].reason, Contains("ckpt-3"));
  CHECK(mgr.latest_step() == 2);
  const auto ix = ManagerIndex::read(dir / "run");
  REQUIRE(ix.entries.size() == 3);
  CHECK(ix.entries[2].corrupt);
  CHECK_FALSE(ix.entries[1].corrupt);

  // The corrupt step can be saved again; it replaces the damaged one.
  set_epoch(r, 3);
  CHECK_NOTHROW(mgr.save(3));
  Model again = make(1);
  CHECK(load(one, dir / "run" / "ckpt-3", again).ok());
  CHECK(holds(again, 3));

  // Nothing loads: corrupt_error naming the directory and listing what was tried.
  ckpt_test::write_bytes(dir / "run" / "ckpt-3" / metadata_name, std::vector<char>{'x'});
  ckpt_test::write_bytes(dir / "run" / "ckpt-2" / metadata_name, std::vector<char>{'x'});
  ckpt_test::write_bytes(dir / "run" / "ckpt-1" / metadata_name, std::vector<char>{'x'});
  CHECK_THROWS_WITH(mgr.restore_or_initialize(), Contains("no checkpoint could be restored (3 tried)") && Contains("ckpt-1"));
}

TEST_CASE("dist manager: invalid options are refused naming the option", "[dist][manager]") {
  ckpt_test::TempDir dir;
  SingleProcess one;
  Model m = make(1);
  dist::ManagerOptions o;
  o.max_to_keep = 0;
  CHECK_THROWS_WITH(dist::CheckpointManager(one, dir / "run", m, o), Contains("max_to_keep"));
  o = {};
  o.prefix = "a/b";
  CHECK_THROWS_WITH(dist::CheckpointManager(one, dir / "run", m, o), Contains("prefix"));
  o = {};
  o.best_k = 1;
  CHECK_THROWS_WITH(dist::CheckpointManager(one, dir / "run", m, o), Contains("best_metric"));
  CHECK_FALSE(std::filesystem::exists(dir / "run"));  // refused before anything is created
}
