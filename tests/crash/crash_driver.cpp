// Crash-consistency driver: starts crash_saver, kills it with SIGKILL at a random moment
// (seeded), then opens the directory with a fresh CheckpointManager — which removes the
// temporaries of the interrupted save and reconciles the index — and checks that latest()
// verifies and loads, and that its values are exactly the state the saver had at that step.
//   crash_driver SAVER WORKDIR TRIALS SEED [--async]
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ckpt/ckpt.hpp>
#include <ckpt/manager.hpp>
#include <cstring>
#include <iostream>
#include <random>
#include <thread>

#include "crash_state.hpp"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: crash_driver SAVER WORKDIR TRIALS SEED [--async]\n";
    return 2;
  }
  const std::string saver = argv[1];
  const std::filesystem::path dir = argv[2];
  const int trials = std::stoi(argv[3]);
  std::mt19937_64 rng(std::stoull(argv[4]));
  const bool async = argc > 5 && std::strcmp(argv[5], "--async") == 0;
  std::filesystem::remove_all(dir);
  int failures = 0, with_checkpoint = 0;
  std::int64_t max_step = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<char*> av{const_cast<char*>(saver.c_str()), const_cast<char*>(argv[2])};
    if (async) av.push_back(const_cast<char*>("--async"));
    av.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawn(&pid, saver.c_str(), nullptr, nullptr, av.data(), environ) != 0) {
      std::perror("posix_spawn");
      return 2;
    }
    // Kill somewhere between start-up and a few saves in.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 60000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) {
      std::cerr << "trial " << t << ": saver exited by itself with " << WEXITSTATUS(status) << "\n";
      ++failures;
      continue;
    }
    try {
      crash_test::State state;
      ckpt::Checkpoint ck;
      ck.track("state", state);
      ckpt::ManagerOptions o;
      o.max_to_keep = 3;
      ckpt::CheckpointManager mgr(dir, ck, o);  // cleans orphans, reconciles
      for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().filename().string().find(ckpt::io::temp_marker) != std::string::npos) {
          std::cerr << "trial " << t << ": temporary left after open: " << e.path() << "\n";
          ++failures;
        }
      }
      if (auto latest = mgr.latest()) {
        ckpt::verify(*latest);
        const auto step = mgr.restore_or_initialize();
        if (!step || !(state == crash_test::State::at(*step))) {
          std::cerr << "trial " << t << ": latest " << latest->string() << " does not hold the saved state\n";
          ++failures;
        } else {
          ++with_checkpoint;
          max_step = std::max(max_step, *step);
        }
      }
    } catch (const std::exception& e) {
      std::cerr << "trial " << t << ": " << e.what() << "\n";
      ++failures;
    }
  }
  std::cout << "crash trials: " << trials << ", with a checkpoint to check: " << with_checkpoint << ", highest step " << max_step
            << ", failures: " << failures << "\n";
  std::cout << (trials - failures) << " passed, " << failures << " failed\n";
  return failures ? 1 : 0;
}
