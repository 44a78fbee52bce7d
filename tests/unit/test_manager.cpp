// Unit tests for ckpt/manager.hpp (synchronous side): the retention matrix (max_to_keep,
// every-n-steps, every-n-hours, best-k min/max, combinations, the newest is never deleted),
// the index and its commit order, cleanup and reconciliation on open, should_save, option
// validation, other backends (JSON, a directory backend), and the directory lock.
#include <sys/wait.h>
#include <unistd.h>

#include "manager_fixture.hpp"

using namespace ckpt;
using Steps = std::set<std::int64_t>;

namespace {
/// Save steps 1..n with metric values `loss[i]` (when given) and return the steps on disk.
Steps run(const std::filesystem::path& dir, ManagerOptions o, int n, const std::vector<double>& metric = {},
          const std::string& metric_name = "loss") {
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir, ck, std::move(o));
  for (int s = 1; s <= n; ++s) {
    mt::fill(m, static_cast<float>(s));
    std::map<std::string, double> metrics;
    if (!metric.empty()) metrics[metric_name] = metric[static_cast<std::size_t>(s - 1)];
    mgr.save(s, metrics);
    // invariant at every step: the index and the disk agree, and the newest is there
    CHECK(mt::steps_indexed(mgr) == mt::steps_on_disk(dir));
    CHECK(mgr.latest_step() == s);
  }
  return mt::steps_on_disk(dir);
}
}  // namespace

TEST_CASE("retention: max_to_keep keeps the newest N, nullopt keeps all", "[manager][retention]") {
  ckpt_test::TempDir d1, d2, d3;
  auto o = mt::fast();
  o.max_to_keep = 3;
  CHECK(run(d1.path(), o, 7) == Steps{5, 6, 7});
  o.max_to_keep = std::nullopt;
  CHECK(run(d2.path(), o, 7) == Steps{1, 2, 3, 4, 5, 6, 7});
  o.max_to_keep = 1;
  CHECK(run(d3.path(), o, 4) == Steps{4});
  CHECK(ManagerOptions{}.max_to_keep == std::size_t{5});  // the default
}

TEST_CASE("retention: keep_every_n_steps keeps multiples beside the window", "[manager][retention]") {
  ckpt_test::TempDir dir;
  auto o = mt::fast();
  o.max_to_keep = 2;
  o.keep_every_n_steps = 3;
  CHECK(run(dir.path(), o, 10) == Steps{3, 6, 9, 10});
}

TEST_CASE("retention: best_k by a metric, min and max, ties favour the newer", "[manager][retention]") {
  const std::vector<double> loss{0.5, 0.2, 0.9, 0.1, 0.7, 0.8};
  SECTION("min") {
    ckpt_test::TempDir dir;
    auto o = mt::fast();
    o.max_to_keep = 1;
    o.best_k = 2;
    o.best_metric = "loss";
    o.best_mode = BestMode::min;
    CHECK(run(dir.path(), o, 6, loss) == Steps{2, 4, 6});  // best two (0.1, 0.2) + the newest
  }
  SECTION("max") {
    ckpt_test::TempDir dir;
    auto o = mt::fast();
    o.max_to_keep = 1;
    o.best_k = 2;
    o.best_metric = "acc";
    o.best_mode = BestMode::max;
    CHECK(run(dir.path(), o, 6, loss, "acc") == Steps{3, 6});  // 0.9 and 0.8 (step 6 is also the newest)
  }
  SECTION("ties") {
    ckpt_test::TempDir dir;
    auto o = mt::fast();
    o.max_to_keep = 1;
    o.best_k = 1;
    o.best_metric = "loss";
    CHECK(run(dir.path(), o, 5, {0.3, 0.1, 0.1, 0.5, 0.6}) == Steps{3, 5});
  }
  SECTION("checkpoints without the metric, or with NaN, do not compete") {
    ckpt_test::TempDir dir;
    auto o = mt::fast();
    o.max_to_keep = 1;
    o.best_k = 1;
    o.best_metric = "loss";
    const double nan = std::nan("");
    CHECK(run(dir.path(), o, 4, {nan, 0.4, nan, nan}) == Steps{2, 4});
  }
}

TEST_CASE("retention: the newest is never deleted, even when it is the worst", "[manager][retention]") {
  ckpt_test::TempDir dir;
  auto o = mt::fast();
  o.max_to_keep = 1;
  o.best_k = 1;
  o.best_metric = "loss";
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, o);
  mgr.save(1, {{"loss", 0.1}});
  mgr.save(2, {{"loss", 5.0}});
  CHECK(mt::steps_on_disk(dir.path()) == Steps{1, 2});
  mgr.save(3, {{"loss", 9.0}});
  CHECK(mt::steps_on_disk(dir.path()) == Steps{1, 3});
  // the pure policy agrees, whatever the window
  std::vector<CheckpointInfo> e(3);
  for (int i = 0; i < 3; ++i) e[static_cast<std::size_t>(i)].step = i + 1;
  RetentionPolicy p;
  p.max_to_keep = 1;
  auto t = std::chrono::system_clock::time_point{};
  CHECK(apply_retention(e, p, t, std::nullopt) == std::vector<std::size_t>{0, 1});
  e[2].corrupt = true;  // a corrupt newest does not count as the newest
  CHECK(apply_retention(e, p, t, std::nullopt) == std::vector<std::size_t>{0, 2});
}

TEST_CASE("retention: a checkpoint saved below existing steps survives its own save", "[manager][retention]") {
  ckpt_test::TempDir dir;
  auto o = mt::fast();
  o.max_to_keep = 2;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, o);
  for (int s : {10, 20, 30}) mgr.save(s);
  mgr.save(5);  // e.g. after restoring an older step: the window is by step, but the new one stays
  CHECK(mt::steps_on_disk(dir.path()) == Steps{5, 20, 30});
  CHECK(mgr.latest_step() == 30);  // latest is the highest step
  mgr.save(6);
  CHECK(mt::steps_on_disk(dir.path()) == Steps{6, 20, 30});
}

TEST_CASE("retention: combination of window, every-n-steps and best-k", "[manager][retention]") {
  ckpt_test::TempDir dir;
  auto o = mt::fast();
  o.max_to_keep = 2;
  o.keep_every_n_steps = 4;
  o.best_k = 1;
  o.best_metric = "loss";
  //                    1    2    3     4    5    6    7    8    9    10
  const std::vector<double> loss{0.9, 0.8, 0.05, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1};
  CHECK(run(dir.path(), o, 9, loss) == Steps{3, 4, 8, 9});  // best 3, multiples 4 8, window 8 9
  CHECK(run(dir.path(), o, 0) == Steps{3, 4, 8, 9});        // reopening deletes nothing
}

TEST_CASE("retention: keep_every_n_hours preserves one per period, TF-style, across reopen", "[manager][retention]") {
  ckpt_test::TempDir dir;
  mt::FakeClock clock;
  auto o = mt::fast();
  o.max_to_keep = 2;
  o.keep_every_n_hours = 1.0;
  o.clock = clock.fn();
  mt::Model m;
  Checkpoint ck{{"model", m}};
  {
    CheckpointManager mgr(dir.path(), ck, o);  // created at t0: the first period starts here
    for (int s = 1; s <= 10; ++s) {
      clock.t += std::chrono::minutes(20);
      mgr.save(s);
    }
    CHECK(mt::steps_on_disk(dir.path()) == Steps{3, 6, 9, 10});  // t0+60, +120 preserved; 9, 10 in the window
    std::vector<std::int64_t> preserved;
    for (const auto& c : mgr.checkpoints())
      if (c.preserved) preserved.push_back(c.step);
    CHECK(preserved == std::vector<std::int64_t>{3, 6});
  }
  CheckpointManager mgr(dir.path(), ck, o);  // preserved flags and the last preserved time persist
  clock.t += std::chrono::minutes(20);
  mgr.save(11);
  CHECK(mt::steps_on_disk(dir.path()) == Steps{3, 6, 9, 10, 11});  // 9 is 60 min after 6: preserved
  clock.t += std::chrono::minutes(20);
  mgr.save(12);
  CHECK(mt::steps_on_disk(dir.path()) == Steps{3, 6, 9, 11, 12});  // 10 is only 20 min after 9
}

TEST_CASE("manager: the index records step, file, time and metrics, and survives reopening", "[manager]") {
  ckpt_test::TempDir dir;
  mt::FakeClock clock;
  auto o = mt::fast();
  o.clock = clock.fn();
  mt::Model m;
  Checkpoint ck{{"model", m}};
  {
    CheckpointManager mgr(dir.path(), ck, o);
    CHECK_FALSE(mgr.latest());
    mgr.save(10, {{"loss", 0.5}, {"acc", 0.75}});
    clock.t += std::chrono::seconds(30);
    mgr.save(20, {{"loss", 0.25}});
    CHECK(mgr.latest() == dir / "ckpt-20.ckpt");
    CHECK(ck.save_counter() == 2);
  }
  CheckpointManager mgr(dir.path(), ck, o);
  const auto c = mgr.checkpoints();
  REQUIRE(c.size() == 2);
  CHECK(c[0].step == 10);
  CHECK(c[0].path == dir / "ckpt-10.ckpt");
  CHECK(c[0].metrics == std::map<std::string, double>{{"loss", 0.5}, {"acc", 0.75}});
  CHECK(c[1].time - c[0].time == std::chrono::seconds(30));
  CHECK(c[1].format == "native");
  const auto j = Value::parse(ckpt_test::read_bytes(dir / "checkpoints.json"));
  CHECK(j["format"] == "ckpt-manager-index");
  CHECK(j["checkpoints"][1]["file"] == "ckpt-20.ckpt");
  CHECK(mgr.latest_step() == 20);
  // the same step twice is refused, with the file named
  try {
    mgr.save(20);
    FAIL("duplicate step accepted");
  } catch (const io_error& e) {
    CHECK(e.code() == EEXIST);
    CHECK(e.path() == (dir / "ckpt-20.ckpt").string());
  }
  CHECK_THROWS_AS(mgr.save(-1), error);
}

TEST_CASE("manager: should_save follows save_interval_steps", "[manager]") {
  ckpt_test::TempDir dir;
  auto o = mt::fast();
  o.save_interval_steps = 10;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, o);
  CHECK(mgr.should_save(3));  // nothing saved yet
  mgr.save(3);
  CHECK_FALSE(mgr.should_save(3));
  CHECK_FALSE(mgr.should_save(12));
  CHECK(mgr.should_save(13));
  CHECK(mgr.should_save(40));
}

TEST_CASE("manager: invalid options are refused with the option named", "[manager]") {
  ckpt_test::TempDir dir;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  auto expect_bad = [&](ManagerOptions o, const std::string& name) {
    try {
      CheckpointManager mgr(dir.path(), ck, o);
      FAIL("accepted bad option " + name);
    } catch (const error& e) {
      CHECK(std::string(e.what()).find("'" + name + "'") != std::string::npos);
    }
  };
  ManagerOptions o;
  o.max_to_keep = 0;
  expect_bad(o, "max_to_keep");
  o = {};
  o.best_k = 2;
  expect_bad(o, "best_metric");
  o = {};
  o.keep_every_n_steps = 0;
  expect_bad(o, "keep_every_n_steps");
  o = {};
  o.keep_every_n_hours = -1;
  expect_bad(o, "keep_every_n_hours");
  o = {};
  o.save_interval_steps = 0;
  expect_bad(o, "save_interval_steps");
  CHECK_THROWS_AS(Backend("no-such-format"), unsupported_error);
}

TEST_CASE("manager: temporaries are removed and the index reconciled on open", "[manager][reconcile]") {
  ckpt_test::TempDir dir;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  auto o = mt::fast();
  o.max_to_keep = 2;
  {
    CheckpointManager mgr(dir.path(), ck, o);
    for (int s = 1; s <= 3; ++s) mgr.save(s);
  }
  // a crash left: temporaries of a checkpoint (file and directory) and of the index; a
  // checkpoint committed but not indexed; an old one the index dropped but not yet deleted;
  // an index entry whose file is gone; and a directory moved aside whose successor never
  // arrived (its name is missing: it is renamed back, not deleted)
  ckpt_test::write_bytes(dir / "ckpt-4.ckpt.tmp-abc123", {'x'});
  std::filesystem::create_directory(dir / "ckpt-3.ckpt.tmp-old-zz");
  std::filesystem::create_directory(dir / "ckpt-6.d.tmp-old-yy");
  ckpt_test::write_bytes(dir / "checkpoints.json.tmp-q1", {'{'});
  std::filesystem::copy_file(dir / "ckpt-3.ckpt", dir / "ckpt-7.ckpt");
  std::filesystem::copy_file(dir / "ckpt-3.ckpt", dir / "ckpt-1.ckpt");
  std::filesystem::remove(dir / "ckpt-2.ckpt");
  ckpt_test::write_bytes(dir / "unrelated.txt", {'k'});
  mt::WarningCapture w;
  CheckpointManager mgr(dir.path(), ck, o);
  CHECK(dir.list() == std::vector<std::string>{"checkpoints.json", "checkpoints.lock", "ckpt-1.ckpt", "ckpt-3.ckpt", "ckpt-6.d", "ckpt-7.ckpt", "unrelated.txt"});
  CHECK(mt::steps_indexed(mgr) == Steps{1, 3, 7});
  CHECK(mgr.latest_step() == 7);
  CHECK(w.any_contains("removed 3 temporary file(s)"));
  CHECK(w.any_contains("restored '" + (dir / "ckpt-6.d").string() + "'"));
  std::filesystem::remove(dir / "ckpt-6.d");
  CHECK(w.any_contains("ckpt-2.ckpt' is in the index but not on disk"));
  CHECK(w.any_contains("adopting checkpoint"));
  mgr.save(8);  // retention now treats adopted ones like the rest
  CHECK(mt::steps_on_disk(dir.path()) == Steps{7, 8});
}

TEST_CASE("manager: the index records a checkpoint before anything is deleted", "[manager][commit]") {
  ckpt_test::TempDir dir;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  auto o = mt::fast();
  o.max_to_keep = 1;
  {
    CheckpointManager mgr(dir.path(), ck, o);
    mgr.save(1);
    mgr.save(2);
    // the index write of the next save fails: the new checkpoint is committed, nothing is deleted
    io::write_fault_hook() = [](const std::string& p, std::uint64_t, std::size_t) {
      return p.find("checkpoints.json") != std::string::npos ? EIO : 0;
    };
    CHECK_THROWS_AS(mgr.save(3), io_error);
    io::write_fault_hook() = nullptr;
    CHECK(mt::steps_on_disk(dir.path()) == Steps{2, 3});
    CHECK(mgr.latest_step() == 3);
  }
  // on reopen the unindexed checkpoint is adopted; the next save then applies retention
  mt::WarningCapture w;
  CheckpointManager mgr(dir.path(), ck, o);
  CHECK(mt::steps_indexed(mgr) == Steps{2, 3});
  mgr.save(4);
  CHECK(mt::steps_on_disk(dir.path()) == Steps{4});
}

TEST_CASE("manager: a failed checkpoint write changes nothing", "[manager][commit]") {
  ckpt_test::TempDir dir;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  auto o = mt::fast();
  o.max_to_keep = 1;
  CheckpointManager mgr(dir.path(), ck, o);
  mgr.save(1);
  const auto before = ckpt_test::read_bytes(dir / "checkpoints.json");
  io::write_fault_hook() = [](const std::string& p, std::uint64_t, std::size_t) { return p.find("ckpt-2") != std::string::npos ? ENOSPC : 0; };
  CHECK_THROWS_AS(mgr.save(2), io_error);
  io::write_fault_hook() = nullptr;
  CHECK(dir.list() == std::vector<std::string>{"checkpoints.json", "checkpoints.lock", "ckpt-1.ckpt"});
  CHECK(ckpt_test::read_bytes(dir / "checkpoints.json") == before);
  CHECK(ck.save_counter() == 1);  // the failed save did not count
  mgr.save(2);
  CHECK(mt::steps_on_disk(dir.path()) == Steps{2});
}

TEST_CASE("manager: works with the JSON backend and with a directory backend", "[manager][backend]") {
  SECTION("json by name") {
    ckpt_test::TempDir dir;
    auto o = mt::fast();
    o.format = "json";
    o.max_to_keep = 2;
    mt::Model m;
    Checkpoint ck{{"model", m}};
    CheckpointManager mgr(dir.path(), ck, o);
    for (int s = 1; s <= 3; ++s) {
      mt::fill(m, static_cast<float>(s));
      mgr.save(s);
    }
    CHECK(dir.list() == std::vector<std::string>{"checkpoints.json", "checkpoints.lock", "ckpt-2.json", "ckpt-3.json"});
    mt::fill(m, 0);
    CHECK(mgr.restore_or_initialize() == 3);
    CHECK(m.seen == 3);
  }
  SECTION("directory checkpoints") {
    ckpt_test::TempDir dir;
    auto o = mt::fast();
    o.format = Backend::of<rawdir::format>();  // examples/rawdir.hpp
    o.max_to_keep = 2;
    mt::Model m;
    Checkpoint ck{{"model", m}};
    {
      CheckpointManager mgr(dir.path(), ck, o);
      for (int s = 1; s <= 4; ++s) {
        mt::fill(m, static_cast<float>(s));
        mgr.save(s);
      }
      CHECK(std::filesystem::is_directory(dir / "ckpt-4.rawdir"));
      CHECK(mt::steps_on_disk(dir.path()) == Steps{3, 4});
    }
    std::filesystem::create_directory(dir / "ckpt-9.rawdir.tmp-x");  // an interrupted directory save
    mt::WarningCapture w;
    CheckpointManager mgr(dir.path(), ck, o);
    CHECK(w.any_contains("removed 1 temporary file(s)"));
    CHECK_FALSE(std::filesystem::exists(dir / "ckpt-9.rawdir.tmp-x"));
    mt::fill(m, 0);
    CHECK(mgr.restore_or_initialize() == 4);
    CHECK(m.w[1] == 5.0f);
    mgr.restore(3);
    CHECK(m.seen == 3);
  }
}

TEST_CASE("manager: a second manager on the same directory gets a clear io_error", "[manager][lock]") {
  ckpt_test::TempDir dir;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  {
    CheckpointManager first(dir.path(), ck, mt::fast());
    try {
      CheckpointManager second(dir.path(), ck, mt::fast());
      FAIL("second manager opened a locked directory");
    } catch (const io_error& e) {
      CHECK(e.code() == EWOULDBLOCK);
      CHECK(e.path() == (dir / "checkpoints.lock").string());
      CHECK(std::string(e.what()).find("locked by another CheckpointManager (process " + std::to_string(::getpid()) + ")") != std::string::npos);
    }
    // another process is refused the same way
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int code = 1;
      try {
        CheckpointManager other(dir.path(), ck, mt::fast());
      } catch (const io_error& e) {
        code = e.code() == EWOULDBLOCK ? 42 : 2;
      } catch (...) {
        code = 3;
      }
      ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 42);
    first.save(1);
  }
  CheckpointManager again(dir.path(), ck, mt::fast());  // released with the first manager
  CHECK(again.latest_step() == 1);
}

TEST_CASE("manager: the checkpoint retention will delete gives up its page cache before the next save writes", "[manager]") {
  ckpt_test::TempDir dir;
  mt::Model m;
  Checkpoint ck{{"model", m}};
  auto o = mt::fast();
  o.max_to_keep = 1;
  CheckpointManager mgr(dir.path(), ck, o);
  mgr.save(1);
  const auto first = dir / "ckpt-1.ckpt";
  ::sync();                           // written back long ago, as a previous checkpoint is: clean pages
  (void)ckpt::io::read_file(first);  // cached
  const std::size_t cached = ckpt_test::resident_pages(first);
  std::optional<std::size_t> during;  // ckpt-1's cached pages when ckpt-2's first byte is written
  ckpt::io::write_fault_hook() = [&](const std::string& p, std::uint64_t, std::size_t) {
    if (!during && p.find("ckpt-2") != std::string::npos) during = ckpt_test::resident_pages(first);
    return 0;
  };
  mgr.save(2);
  ckpt::io::write_fault_hook() = nullptr;
  REQUIRE(during.has_value());
  CHECK_FALSE(std::filesystem::exists(first));  // deleted after the save, as before
  if (ckpt_test::dontneed_drops_pages(dir.path())) {
    INFO("ckpt-1 pages cached before: " << cached << ", while ckpt-2 was written: " << *during);
    CHECK(cached > 0);
    CHECK(*during == 0);
  } else {
    WARN("this filesystem keeps pages on POSIX_FADV_DONTNEED (tmpfs?): the hint is not observable here");
  }
}
