// Faults and crashes in the steps of a save other than write(2): fsync, close, rename, the
// directory swap (RENAME_EXCHANGE) and the directory fsync. The io layer's sync_fault_hook
// fails the k-th such step (or ends the process there) for every k a save takes, in every
// built-in format, with the swap available and with it refused as on a filesystem without it
// (the two-rename fallback). A failed save raises io_error; the previous checkpoint holds the
// old bytes, or — when the failure came after the new one was in place — the new ones; no
// temporary is left. A crash at any step of a directory save leaves a directory that the next
// CheckpointManager restores from: never one where the checkpoint is gone.
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <map>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

StateDict state(std::uint64_t seed, bool lone_tensor) {
  if (lone_tensor) return StateDict(ckpt_test::random_tensor(DType::f32, {64, 64}, seed));
  StateDict sd;
  sd["model"].set("0.weight", ckpt_test::random_tensor(DType::f32, {64, 64}, seed));
  sd["model"].set("0.bias", ckpt_test::random_tensor(DType::f32, {64}, seed + 1));
  sd["epoch"] = static_cast<std::int64_t>(seed);
  return sd;
}

/// Fails (or, with crash, ends the process at) the k-th sync step; `no_exchange` also refuses
/// every RENAME_EXCHANGE with EINVAL, as a filesystem without it does. Records each step.
struct StepFault {
  StepFault(int k, int err, bool no_exchange, bool crash = false) {
    io::sync_fault_hook() = [=, this](io::SyncStep s, const std::string&) {
      if (no_exchange && s == io::SyncStep::exchange) return EINVAL;
      const bool hit = static_cast<int>(steps.size()) == k;
      steps.push_back(s);
      if (hit && crash) ::_exit(0);
      return hit ? err : 0;
    };
  }
  ~StepFault() { io::sync_fault_hook() = nullptr; }
  StepFault(const StepFault&) = delete;
  StepFault& operator=(const StepFault&) = delete;
  std::vector<io::SyncStep> steps;
};

template <class F>
void run_format(const ckpt_test::TempDir& dir, bool no_exchange, int& faults) {
  const std::string name(archive_traits<F>::name);
  const fs::path p = dir / ("f-" + name + ckpt_test::first_extension<F>());
  bool lone = false;
  const StateDict v1 = ckpt_test::save_first<F>(p, [](bool one) { return state(1, one); }, lone);
  const StateDict v2 = state(2, lone);
  const auto old_bytes = ckpt_test::snapshot(p);
  const auto listing = dir.list();
  // The steps one save takes (k past the last: the save succeeds, nothing injected).
  std::size_t n = 0;
  {
    StepFault count(1 << 30, 0, no_exchange);
    save_as<F>(p, v2);
    n = count.steps.size();
  }
  const auto new_bytes = ckpt_test::snapshot(p);
  save_as<F>(p, v1);
  REQUIRE(ckpt_test::snapshot(p) == old_bytes);
  REQUIRE(n >= 3);  // at least fsync, rename, directory fsync
  for (std::size_t k = 0; k < n; ++k) {
    io::SyncStep at{};
    {
      StepFault fault(static_cast<int>(k), EIO, no_exchange);
      try {
        save_as<F>(p, v2);
        FAIL("the save did not fail");
      } catch (const io_error& e) {
        CHECK(e.code() == EIO);
      }
      REQUIRE(fault.steps.size() == k + 1);
      at = fault.steps.back();
    }
    INFO(name << (no_exchange ? " (no RENAME_EXCHANGE)" : "") << ": " << io::sync_step_name(at) << " (step " << k << " of " << n << ") failed");
    CHECK(dir.list() == listing);  // no temporary left, nothing new
    const auto now = ckpt_test::snapshot(p);
    // Before the new checkpoint is in place the old one is intact; after, it is the new one.
    CHECK((now == old_bytes || (now == new_bytes && at == io::SyncStep::fsync_dir)));
    if (now != old_bytes) save_as<F>(p, v1);
    ++faults;
  }
}

}  // namespace

TEST_CASE("a failing fsync, close, rename or directory fsync: io_error, the previous checkpoint intact, no temporary left", "[reliability][faults]") {
  ckpt_test::TempDir dir;
  int faults = 0, formats = 0;
  for (const bool no_exchange : {false, true}) {
    detail::for_each_format([&]<class F>(F) {
      INFO(archive_traits<F>::name << (no_exchange ? " without RENAME_EXCHANGE" : ""));
      run_format<F>(dir, no_exchange, faults);
      ++formats;
    });
  }
  WARN(formats << " format runs, " << faults << " failed sync steps");
  CHECK(formats >= 14);
}

TEST_CASE("a crash at any step of a directory save: the next manager restores the old or the new checkpoint", "[reliability][crash]") {
  for (const bool no_exchange : {false, true}) {
    const char* how = no_exchange ? "two renames" : "RENAME_EXCHANGE";
    ckpt_test::TempDir dir;
    const StateDict v1 = state(1, false), v2 = state(2, false);
    ManagerOptions o;
    o.format = "safetensors-sharded";
    {
      StateDict live = v1;
      Checkpoint ck{{"m", live}};
      CheckpointManager mgr(dir.path(), ck, o);
      mgr.save(1);
    }
    const fs::path ckpt1 = dir / "ckpt-1";
    REQUIRE(fs::is_directory(ckpt1));
    const StateDict tree1 = load_as<safetensors_sharded_format>(ckpt1);  // save_counter and m = v1
    StateDict tree2 = tree1;
    tree2.at("m") = v2;
    std::size_t n = 0;  // the sync steps of one save of ckpt-1 over itself
    {
      StepFault count(1 << 30, 0, no_exchange);
      save_as<safetensors_sharded_format>(ckpt1, tree2);
      n = count.steps.size();
    }
    save_as<safetensors_sharded_format>(ckpt1, tree1);
    REQUIRE(n >= 3);
    int restored_old = 0, restored_new = 0;
    for (std::size_t k = 0; k < n; ++k) {
      INFO(how << ": crash at sync step " << k << " of " << n);
      const pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        StepFault crash(static_cast<int>(k), 0, no_exchange, true);
        try {
          save_as<safetensors_sharded_format>(ckpt1, tree2);
        } catch (...) {
          ::_exit(3);
        }
        ::_exit(4);  // the crash step was never reached
      }
      int status = 0;
      REQUIRE(::waitpid(child, &status, 0) == child);
      REQUIRE(WIFEXITED(status));
      REQUIRE(WEXITSTATUS(status) == 0);
      // With the swap no crash point finds the name missing (without it, cleanup's rename back
      // covers the one between the two renames).
      if (!no_exchange) CHECK(fs::is_directory(ckpt1));
      // A new manager cleans up and must find step 1, with the old or the new values. The saves
      // here go behind the manager's back, so its index records the old files' digests and
      // would rightly refuse the new ones (a manager never writes over a healthy step): without
      // the index it adopts what it finds on disk, which is what is tested here.
      fs::remove(dir / "checkpoints.json");
      warning_handler() = [](const std::string&) {};
      StateDict into = v1;
      Checkpoint ck{{"m", into}};
      CheckpointManager mgr(dir.path(), ck, o);
      const auto step = mgr.restore_or_initialize();
      warning_handler() = nullptr;
      REQUIRE(step == 1);
      const bool is_old = into == v1, is_new = into == v2;
      CHECK((is_old || is_new));
      restored_old += is_old ? 1 : 0;
      restored_new += is_new ? 1 : 0;
      for (const auto& f : dir.list()) CHECK(f.find(std::string(io::temp_marker)) == std::string::npos);
      if (is_new) save_as<safetensors_sharded_format>(ckpt1, tree1);
    }
    WARN(how << ": " << n << " crash points; restored the old checkpoint " << restored_old << " times, the new one "
             << restored_new << " times");
    CHECK(restored_old + restored_new == static_cast<int>(n));
  }
}
