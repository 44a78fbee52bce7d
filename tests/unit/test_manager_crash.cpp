// Crash test for the commit protocol: a child process saves durable checkpoints in a loop and
// is killed with SIGKILL at varying moments; after each kill a new manager must open the
// directory with no temporaries left, an index that names only complete checkpoints that
// verify, and resume from the newest without any fallback. Where the kill lands varies; what
// is asserted does not depend on it.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "manager_fixture.hpp"

using namespace ckpt;

namespace {
struct Big {
  std::vector<float> w = std::vector<float>(1 << 18, 0.0f);  // 1 MiB
  std::int64_t step = 0;
};
CKPT_FIELDS(Big, w, step)

ManagerOptions durable() {
  ManagerOptions o;  // fsync on (the default)
  o.max_to_keep = 2;
  o.keep_every_n_steps = 5;
  return o;
}

// Saves forever; after its first commit it writes one byte to `ready`, so the parent's kill
// always lands after this process has committed something, however loaded the machine is.
[[noreturn]] void child_saves(const std::filesystem::path& dir, int ready) {
  try {
    warning_handler() = [](const std::string&) {};
    Big b;
    Checkpoint ck{{"big", b}};
    CheckpointManager mgr(dir, ck, durable());
    std::int64_t step = mgr.restore_or_initialize().value_or(0);
    for (;;) {
      ++step;
      for (auto& x : b.w) x = static_cast<float>(step);
      b.step = step;
      mgr.save(step);
      if (ready >= 0) {
        const char one = 1;
        if (::write(ready, &one, 1) != 1) ::_exit(4);
        ::close(ready);
        ready = -1;
      }
    }
  } catch (...) {
    ::_exit(3);
  }
}
}  // namespace

TEST_CASE("crash: SIGKILL at any moment leaves a directory the next manager opens cleanly", "[manager][crash]") {
  ckpt_test::TempDir dir;
  std::mt19937 rng(12345);
  std::int64_t last = 0;
  for (int round = 0; round < 8; ++round) {
    INFO("round " << round);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(fds[0]);
      child_saves(dir.path(), fds[1]);
    }
    ::close(fds[1]);
    pollfd p{fds[0], POLLIN, 0};
    char byte = 0;  // the child's first commit (2 min at most); EOF if it died first
    const bool committed = ::poll(&p, 1, 120000) == 1 && ::read(fds[0], &byte, 1) == 1;
    ::close(fds[0]);
    if (!committed) ::kill(child, SIGKILL);
    REQUIRE(committed);
    ::usleep(static_cast<useconds_t>(rng() % 60000));  // where the kill lands varies
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));  // killed while saving, not failed

    std::vector<VerifyFailure> failures;
    auto o = durable();
    o.on_verify_failure = [&](const VerifyFailure& f) { failures.push_back(f); };
    mt::WarningCapture w;
    Big b;
    Checkpoint ck{{"big", b}};
    CheckpointManager mgr(dir.path(), ck, o);
    for (const auto& name : dir.list()) CHECK(name.find(".tmp-") == std::string::npos);
    CHECK(mt::steps_indexed(mgr) == mt::steps_on_disk(dir.path()));
    for (const auto& c : mgr.checkpoints()) CHECK_NOTHROW(verify(c.path));
    const auto step = mgr.restore_or_initialize();
    CHECK(failures.empty());
    REQUIRE(step.has_value());  // the child had committed before the kill
    CHECK(*step > last);        // never goes back; this round's child committed a newer step
    CHECK(b.step == *step);
    CHECK(b.w.front() == static_cast<float>(*step));
    CHECK(b.w.back() == static_cast<float>(*step));
    last = *step;
  }
  CHECK(last > 0);  // every child committed before it was killed
}
