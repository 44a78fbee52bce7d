// torch_cuda_block — how long an async CheckpointManager::save of a model living on the GPU
// blocks the training loop (issue 17), beside the pinned device-to-host copy of the same bytes
// (the floor: the blocking part is that copy) and a synchronous ckpt save. Needs a libtorch with
// CUDA and a GPU: built and run by bench/cuda_device.sh on a lent GPU machine, whose
// bench/torch_cuda_save.py times torch.save of the same state from Python in the same run.
//   torch_cuda_block --dir DIR [--size 4G] [--runs 5]
// One JSON line per figure (seconds; medians of --runs timed rounds after one warm-up).
#include <ckpt/integrations/torch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void report(const std::string& what, const std::vector<double>& v) {
  std::printf("{\"figure\": \"%s\", \"median_s\": %.6f, \"min_s\": %.6f, \"max_s\": %.6f, \"runs\": %zu}\n", what.c_str(), median(v),
              *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()), v.size());
  std::fflush(stdout);
}

std::uint64_t parse_size(std::string s) {
  std::uint64_t mult = 1;
  if (!s.empty() && (s.back() == 'G' || s.back() == 'M')) {
    mult = s.back() == 'G' ? (1ull << 30) : (1ull << 20);
    s.pop_back();
  }
  return std::stoull(s) * mult;
}
}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path dir;
  std::uint64_t size = 4ull << 30;
  int runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--dir") dir = argv[i + 1];
    else if (k == "--size") size = parse_size(argv[i + 1]);
    else if (k == "--runs") runs = std::stoi(argv[i + 1]);
  }
  if (dir.empty() || !torch::cuda::is_available()) {
    std::cerr << "usage: torch_cuda_block --dir DIR [--size 4G] [--runs 5] (needs a GPU)\n";
    return 2;
  }
  // The model: 256 MiB f32 parameters on the GPU (16 of them for 4 GiB), as torch.nn would hold them.
  const std::int64_t per = std::int64_t{64} << 20;  // elements: 256 MiB
  const auto count = static_cast<int>(std::max<std::uint64_t>(1, size / (static_cast<std::uint64_t>(per) * 4)));
  std::map<std::string, torch::Tensor> model;
  for (int i = 0; i < count; ++i) model["layer" + std::to_string(i) + ".weight"] = torch::randn({per}, torch::TensorOptions().device(torch::kCUDA));
  torch::cuda::synchronize();
  const double bytes = double(count) * double(per) * 4;
  std::printf("{\"tensors\": %d, \"bytes\": %.0f, \"device\": \"cuda\"}\n", count, bytes);

  // The floor: copying the same bytes to pinned host memory (what the blocking part does).
  std::vector<torch::Tensor> pinned;
  for (const auto& [k, t] : model) pinned.push_back(torch::empty_like(t, torch::TensorOptions().device(torch::kCPU).pinned_memory(true)));
  std::vector<double> copy;
  for (int r = 0; r <= runs; ++r) {
    const auto t0 = Clock::now();
    std::size_t i = 0;
    for (const auto& [k, t] : model) pinned[i++].copy_(t);
    if (r) copy.push_back(seconds_since(t0));
  }
  pinned.clear();
  report("pinned device-to-host copy", copy);

  ckpt::Checkpoint ck;
  ck.track("model", model);
  std::vector<double> block, total;
  {
    ckpt::ManagerOptions mo;
    mo.async = true;
    mo.max_to_keep = 1;
    ckpt::CheckpointManager mgr(dir / "async", ck, mo);
    for (int r = 0; r <= runs; ++r) {
      torch::cuda::synchronize();
      const auto t0 = Clock::now();
      mgr.save(r + 1);
      const double b = seconds_since(t0);
      for (auto& [k, t] : model) t.add_(1.0f);  // training goes on while the save is written
      mgr.wait_until_finished();
      if (r) {
        block.push_back(b);
        total.push_back(seconds_since(t0));
      }
    }
  }
  report("ckpt async save, blocking part", block);
  report("ckpt async save, until committed (fsync)", total);

  std::vector<double> sync;
  {
    ckpt::ManagerOptions mo;
    mo.max_to_keep = 1;
    ckpt::CheckpointManager mgr(dir / "sync", ck, mo);
    for (int r = 0; r <= std::min(runs, 3); ++r) {
      torch::cuda::synchronize();
      const auto t0 = Clock::now();
      mgr.save(r + 1);
      if (r) sync.push_back(seconds_since(t0));
    }
  }
  report("ckpt sync save (fsync)", sync);
  const auto st = ckpt::torch_staging_stats();
  std::printf("{\"pinned_held_bytes\": %llu, \"pinned_reused_bytes\": %llu}\n", static_cast<unsigned long long>(st.held_bytes),
              static_cast<unsigned long long>(st.reused_bytes));
  return 0;
}
