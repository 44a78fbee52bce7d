// The program the crash test kills: saves a deterministic state through CheckpointManager
// (max_to_keep 3) in a loop, step after step, until it is killed with SIGKILL. The state of
// step s is fully determined by s, so the driver can check what it finds on disk.
//   crash_saver DIR [--async]
#include <ckpt/ckpt.hpp>
#include <ckpt/manager.hpp>
#include <cstring>
#include <iostream>

#include "crash_state.hpp"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const bool async = argc > 2 && std::strcmp(argv[2], "--async") == 0;
  crash_test::State state;
  ckpt::Checkpoint ck;
  ck.track("state", state);
  ckpt::ManagerOptions o;
  o.max_to_keep = 3;
  o.async = async;
  ckpt::CheckpointManager mgr(argv[1], ck, o);
  std::int64_t step = mgr.restore_or_initialize().value_or(0);
  if (step && !(state == crash_test::State::at(step))) {
    std::cerr << "restored step " << step << " holds other values\n";
    return 3;
  }
  for (;;) {
    ++step;
    state = crash_test::State::at(step);
    mgr.save(step, {{"loss", 1.0 / static_cast<double>(step)}});
  }
}
