// Crash-consistency driver: starts crash_saver, kills it with SIGKILL at a random moment
// (seeded), then opens the directory with a fresh CheckpointManager — which removes the
// temporaries of the interrupted save and reconciles the index — and checks that latest()
// verifies and loads, and that its values are exactly the state the saver had at that step.
// Once any trial has seen a checkpoint, every later trial must find one, and the newest step
// never goes backwards. Before opening, it classifies where the kill landed (a temporary on
// disk: during a write; a checkpoint file the index does not list yet: during commit; more
// files than max_to_keep: during retention; else between saves) and prints the counts.
//   crash_driver SAVER WORKDIR TRIALS SEED [--async]
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ckpt/ckpt.hpp>
#include <ckpt/manager.hpp>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "crash_state.hpp"

namespace {
constexpr int kMaxToKeep = 3;  // as crash_saver's manager

// Where the kill landed, judged from the directory before a manager opens (and cleans) it.
std::string kill_phase(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir)) return "startup";
  std::set<std::string> files, listed;
  bool temp = false;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(ckpt::io::temp_marker) != std::string::npos) temp = true;
    else if (name.rfind("ckpt-", 0) == 0) files.insert(name);
  }
  if (temp) return "write";
  try {
    std::ifstream in(dir / "checkpoints.json");
    if (in) {
      // kept in a variable: `for (c : parse(in).at(...))` iterates a destroyed temporary
      const nlohmann::json index = nlohmann::json::parse(in);
      for (const auto& c : index.at("checkpoints")) listed.insert(c.at("file").get<std::string>());
    }
  } catch (const std::exception&) {
    return "commit";  // an index caught mid-replace cannot be: it is renamed into place
  }
  for (const auto& f : files) {
    if (!listed.count(f)) return "commit";
  }
  if (files.size() > static_cast<std::size_t>(kMaxToKeep)) return "retention";
  return files.empty() ? "startup" : "between saves";
}
}  // namespace

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
  std::map<std::string, int> phases;
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
    ++phases[kill_phase(dir)];
    try {
      crash_test::State state;
      ckpt::Checkpoint ck;
      ck.track("state", state);
      ckpt::ManagerOptions o;
      o.max_to_keep = kMaxToKeep;
      ckpt::CheckpointManager mgr(dir, ck, o);  // cleans orphans, reconciles
      for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().filename().string().find(ckpt::io::temp_marker) != std::string::npos) {
          std::cerr << "trial " << t << ": temporary left after open: " << e.path() << "\n";
          ++failures;
        }
      }
      const auto latest = mgr.latest();
      if (!latest && max_step > 0) {
        std::cerr << "trial " << t << ": no checkpoint left, though step " << max_step << " was committed before\n";
        ++failures;
      }
      if (latest) {
        ckpt::verify(*latest);
        const auto step = mgr.restore_or_initialize();
        if (!step || !(state == crash_test::State::at(*step))) {
          std::cerr << "trial " << t << ": latest " << latest->string() << " does not hold the saved state\n";
          ++failures;
        } else if (*step < max_step) {
          std::cerr << "trial " << t << ": the newest step went backwards: " << *step << " after " << max_step << "\n";
          ++failures;
        } else {
          ++with_checkpoint;
          max_step = *step;
        }
      }
    } catch (const std::exception& e) {
      std::cerr << "trial " << t << ": " << e.what() << "\n";
      ++failures;
    }
  }
  std::cout << "crash trials: " << trials << ", with a checkpoint to check: " << with_checkpoint << ", highest step " << max_step
            << ", failures: " << failures << "\n";
  std::cout << "kills:";
  for (const char* p : {"startup", "write", "commit", "retention", "between saves"}) std::cout << ' ' << p << ' ' << phases[p] << ';';
  std::cout << "\n";
  std::cout << (trials - failures) << " passed, " << failures << " failed\n";
  return failures ? 1 : 0;
}
