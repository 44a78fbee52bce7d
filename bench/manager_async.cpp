// manager_async — how long CheckpointManager::save blocks the training loop with async=true
// against a synchronous save of the same state, in the same run. The state (default 256 MiB
// of f32 in 8 tensors) is saved alternately by a sync manager and an async one (durable:
// fsync on, native format), each step timed; after each async save the time until the
// background write has committed is recorded too. Prints median/min/max of --runs runs, the
// blocking ratio, and checks that both managers wrote the same bytes.
//   manager_async [--size 256M|BYTES] [--runs N] [--dir DIR] [--smoke]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ckpt/ckpt.hpp>
#include <ckpt/manager.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using ckpt_bench::Stats;
using ckpt_bench::stats;
using clk = std::chrono::steady_clock;

namespace {
double ms_since(clk::time_point t0) { return std::chrono::duration<double, std::milli>(clk::now() - t0).count(); }
std::vector<char> bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
void print(const char* what, const Stats& s) {
  std::printf("%-34s median %9.1f ms   min %9.1f   max %9.1f\n", what, s.median, s.min, s.max);
}
}  // namespace

int main(int argc, char** argv) {
  ckpt_bench::ManagerBenchArgs args;
  args.dir = fs::temp_directory_path() / ("ckpt-bench-manager-" + std::to_string(::getpid()));
  for (int i = 1; i < argc; ++i) {
    if (!args.take(argc, argv, i)) {
      std::cerr << "usage: manager_async [--size 256M] [--runs 5] [--dir DIR] [--smoke]\n";
      return 2;
    }
  }
  const std::uint64_t size = args.size;
  const int runs = args.runs;
  const fs::path dir = args.dir;
  constexpr int tensors = 8;
  ckpt::StateDict state = ckpt_bench::make_state(size, tensors);
  state["step"] = 0;
  fs::remove_all(dir);
  ckpt::Checkpoint ck_sync{{"state", state}}, ck_async{{"state", state}};
  ckpt::ManagerOptions so;
  so.max_to_keep = 1;
  ckpt::ManagerOptions ao = so;
  ao.async = true;
  ao.max_staging_bytes = 2 * size + (1u << 20);
  std::vector<double> sync_ms, block_ms, commit_ms;
  {
    ckpt::CheckpointManager sync_mgr(dir / "sync", ck_sync, so), async_mgr(dir / "async", ck_async, ao);
    for (int r = 1; r <= runs; ++r) {
      state["step"] = r;
      auto t0 = clk::now();
      sync_mgr.save(r);
      sync_ms.push_back(ms_since(t0));
      t0 = clk::now();
      async_mgr.save(r);
      block_ms.push_back(ms_since(t0));
      async_mgr.wait_until_finished();
      commit_ms.push_back(ms_since(t0));
    }
  }
  const bool same = bytes_of(dir / "sync" / ("ckpt-" + std::to_string(runs) + ".ckpt")) ==
                    bytes_of(dir / "async" / ("ckpt-" + std::to_string(runs) + ".ckpt"));
  fs::remove_all(dir);
  const auto s = stats(sync_ms), b = stats(block_ms), c = stats(commit_ms);
  std::printf("state %.1f MiB in %d tensors, %d runs, dir %s (fsync on)\n", static_cast<double>(size) / (1 << 20), tensors, runs, dir.c_str());
  print("sync save", s);
  print("async save, blocking part", b);
  print("async save, until committed", c);
  std::printf("ratio async blocking / sync (medians): %.3f\n", b.median / s.median);
  std::printf("async bytes equal sync bytes: %s\n", same ? "yes" : "NO");
  return same ? 0 : 1;
}
