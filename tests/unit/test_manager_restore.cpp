// Unit tests for CheckpointManager's restore side: restore_or_initialize verifies the newest
// checkpoint and falls back past one with a flipped byte or a truncation (reporting file and
// reason through the callback or a warning), marks bad ones corrupt, tells transient errors
// apart, refuses to start over silently when nothing verifies, and checks object matching.
#include "manager_fixture.hpp"

using namespace ckpt;
using Steps = std::set<std::int64_t>;

namespace {
/// Save steps 1..n with the model filled with the step number.
void populate(const std::filesystem::path& dir, int n, ManagerOptions o = mt::fast()) {
  mt::Model m;
  Checkpoint ck{{"model", m}};
  o.max_to_keep = std::nullopt;
  CheckpointManager mgr(dir, ck, o);
  for (int s = 1; s <= n; ++s) {
    mt::fill(m, static_cast<float>(s));
    mgr.save(s);
  }
}
void flip_byte(const std::filesystem::path& p, std::size_t offset) {
  auto b = ckpt_test::read_bytes(p);
  REQUIRE(offset < b.size());
  b[offset] = static_cast<char>(b[offset] ^ 0x10);
  ckpt_test::write_bytes(p, b);
}
void truncate_to(const std::filesystem::path& p, std::size_t n) {
  auto b = ckpt_test::read_bytes(p);
  b.resize(n);
  ckpt_test::write_bytes(p, b);
}
}  // namespace

TEST_CASE("restore_or_initialize: nothing saved yet leaves the objects alone", "[manager][restore]") {
  ckpt_test::TempDir dir;
  mt::Model m;
  mt::fill(m, 7);
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, mt::fast());
  CHECK(mgr.restore_or_initialize() == std::nullopt);
  CHECK(m.seen == 7);
  CHECK_FALSE(mgr.last_restore());
}

TEST_CASE("restore_or_initialize: one flipped byte in the newest falls back to the previous", "[manager][restore]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 3);
  flip_byte(dir / "ckpt-3.ckpt", 64 + 17);  // inside the first tensor's bytes
  std::vector<VerifyFailure> failures;
  auto o = mt::fast();
  o.on_verify_failure = [&](const VerifyFailure& f) { failures.push_back(f); };
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, o);
  CHECK(mgr.restore_or_initialize() == 2);
  CHECK(m.seen == 2);
  CHECK(m.w[3] == 5.0f);
  CHECK(ck.save_counter() == 2);
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].step == 3);
  CHECK(failures[0].path == dir / "ckpt-3.ckpt");
  CHECK(failures[0].reason.find("checksum mismatch") != std::string::npos);
  CHECK(failures[0].reason.find("ckpt-3.ckpt") != std::string::npos);
  CHECK(failures[0].marked_corrupt);
  CHECK_THROWS_AS(std::rethrow_exception(failures[0].error), corrupt_error);
  // the bad one is marked in the index and skipped from now on
  CHECK(mgr.checkpoints().back().corrupt);
  CHECK(mgr.latest() == dir / "ckpt-2.ckpt");
  CHECK(mgr.should_save(3));
  failures.clear();
  CHECK(mgr.restore_or_initialize() == 2);
  CHECK(failures.empty());
  // training resumes: saving step 3 again replaces the corrupt checkpoint
  mt::fill(m, 30);
  mgr.save(3);
  CHECK_FALSE(mgr.checkpoints().back().corrupt);
  mt::fill(m, 0);
  CHECK(mgr.restore_or_initialize() == 3);
  CHECK(m.seen == 30);
}

TEST_CASE("restore_or_initialize: a truncated newest falls back, with a warning naming file and reason", "[manager][restore]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 3);
  const auto p = dir / "ckpt-3.ckpt";
  truncate_to(p, ckpt_test::read_bytes(p).size() - 40);
  mt::WarningCapture w;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, mt::fast());
  CHECK(mgr.restore_or_initialize() == 2);
  CHECK(m.seen == 2);
  REQUIRE(w.messages.size() == 1);
  CHECK(w.messages[0].find(p.string()) != std::string::npos);
  // the size recorded at commit catches it before the format is read
  CHECK(w.messages[0].find("file size differs from the one committed") != std::string::npos);
}

TEST_CASE("restore_or_initialize: falls back as far as needed, none verifying is an error", "[manager][restore]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 3);
  flip_byte(dir / "ckpt-3.ckpt", 64 + 1);
  truncate_to(dir / "ckpt-2.ckpt", 50);
  std::vector<std::int64_t> failed;
  auto o = mt::fast();
  o.on_verify_failure = [&](const VerifyFailure& f) { failed.push_back(f.step); };
  mt::Model m;
  Checkpoint ck{{"model", m}};
  {
    CheckpointManager mgr(dir.path(), ck, o);
    CHECK(mgr.restore_or_initialize() == 1);
    CHECK(failed == std::vector<std::int64_t>{3, 2});
    CHECK(m.seen == 1);
  }
  truncate_to(dir / "ckpt-1.ckpt", 10);
  mt::fill(m, 99);
  CheckpointManager mgr(dir.path(), ck, o);  // 2 and 3 are remembered as corrupt
  failed.clear();
  try {
    mgr.restore_or_initialize();
    FAIL("started over although checkpoints exist");
  } catch (const corrupt_error& e) {
    CHECK(e.path() == dir.path().string());
    CHECK(e.got().find("ckpt-1.ckpt") != std::string::npos);
  }
  CHECK(failed == std::vector<std::int64_t>{1});
  CHECK(m.seen == 99);  // untouched
}

TEST_CASE("restore_or_initialize: a transient I/O error falls back without marking corrupt", "[manager][restore]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 2);
  std::filesystem::remove(dir / "ckpt-2.ckpt");
  std::filesystem::create_directory(dir / "ckpt-2.ckpt");  // reading it fails with EISDIR
  std::vector<VerifyFailure> failures;
  auto o = mt::fast();
  o.on_verify_failure = [&](const VerifyFailure& f) { failures.push_back(f); };
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, o);
  CHECK(mgr.restore_or_initialize() == 1);
  REQUIRE(failures.size() == 1);
  CHECK_FALSE(failures[0].marked_corrupt);
  CHECK_FALSE(mgr.checkpoints().back().corrupt);
  CHECK(mgr.latest_step() == 2);
}

TEST_CASE("restore_or_initialize: mmap loads are verified too, verify_on_restore=false propagates", "[manager][restore]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 2);
  flip_byte(dir / "ckpt-2.ckpt", 64 + 9);
  mt::Model m;
  Checkpoint ck{{"model", m}};
  {
    auto o = mt::fast();
    o.load_options.mmap = true;
    o.on_verify_failure = [](const VerifyFailure&) {};
    CheckpointManager mgr(dir.path(), ck, o);
    CHECK(mgr.restore_or_initialize() == 1);
  }
  populate(dir.path() / "b", 2);
  flip_byte(dir / "b" / "ckpt-2.ckpt", 64 + 9);
  auto o = mt::fast();
  o.verify_on_restore = false;
  CheckpointManager mgr(dir.path() / "b", ck, o);
  CHECK_THROWS_AS(mgr.restore_or_initialize(), corrupt_error);
}

TEST_CASE("restore_or_initialize: tracked objects must match unless partial_restore", "[manager][restore]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 2);
  mt::Model m, extra;
  Checkpoint ck{{"model", m}, {"ema", extra}};  // "ema" was added since those saves
  {
    CheckpointManager mgr(dir.path(), ck, mt::fast());
    try {
      mgr.restore_or_initialize();
      FAIL("unmatched object accepted");
    } catch (const key_error& e) {
      CHECK(std::string(e.what()).find("ema") != std::string::npos);
      CHECK(e.path() == (dir / "ckpt-2.ckpt").string());
    }
  }
  auto o = mt::fast();
  o.partial_restore = true;
  CheckpointManager mgr(dir.path(), ck, o);
  CHECK(mgr.restore_or_initialize() == 2);
  REQUIRE(mgr.last_restore());
  CHECK(mgr.last_restore()->unmatched() == std::vector<std::string>{"ema"});
  CHECK(m.seen == 2);
}

TEST_CASE("restore(step) restores exactly that checkpoint, an unknown step is a key_error", "[manager][restore]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 3);
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, mt::fast());
  mgr.restore(2).assert_consumed();
  CHECK(m.seen == 2);
  CHECK(ck.save_counter() == 2);
  CHECK_THROWS_AS(mgr.restore(99), key_error);
  flip_byte(dir / "ckpt-1.ckpt", 64 + 2);
  CHECK_THROWS_AS(mgr.restore(1), corrupt_error);  // explicit: no fallback
  CHECK(m.seen == 2);
}
