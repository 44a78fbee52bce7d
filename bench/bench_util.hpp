// bench_util.hpp — what the benchmark programs share: medians with min and max, sizes as
// "1G" / "256M" / "64K" / bytes, the state they save, and a working directory of their own.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <ckpt/ckpt.hpp>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace ckpt_bench {

struct Stats {
  double median = 0, min = 0, max = 0;
};
/// Median (mean of the middle two for an even count), min and max; `v` must not be empty.
inline Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2, v.front(), v.back()};
}

/// "1G", "256M", "64K" or a plain byte count.
inline std::uint64_t parse_size(const std::string& s) {
  const char u = s.empty() ? '\0' : s.back();
  const std::uint64_t mul = u == 'G' ? 1ull << 30 : u == 'M' ? 1ull << 20 : u == 'K' ? 1ull << 10 : 1;
  return std::stoull(mul == 1 ? s : s.substr(0, s.size() - 1)) * mul;
}

/// The options the manager benchmarks share: --size, --runs, --dir and --smoke (8 MiB, one run).
struct ManagerBenchArgs {
  std::uint64_t size = 256ull << 20;
  int runs = 5;
  std::filesystem::path dir;
  /// Take argv[i] (and its value, advancing i) if it is one of them; false otherwise.
  bool take(int argc, char** argv, int& i) {
    const std::string a = argv[i];
    if (a == "--size" && i + 1 < argc) size = parse_size(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--smoke") {
      size = 8ull << 20;
      runs = 1;
    } else {
      return false;
    }
    return true;
  }
};

/// `tensors` f32 tensors of random-normal values totalling `bytes`, under "layers".
inline ckpt::StateDict make_state(std::uint64_t bytes, int tensors = 16) {
  ckpt::StateDict sd;
  const auto per = static_cast<std::int64_t>(bytes / 4 / static_cast<std::uint64_t>(tensors));
  std::mt19937 g(1);
  std::normal_distribution<float> n;
  for (int i = 0; i < tensors; ++i) {
    ckpt::Tensor t(ckpt::DType::f32, {per});
    for (auto& v : t.mutable_values<float>()) v = n(g);
    sd["layers"].set(std::to_string(i) + ".weight", t);
  }
  return sd;
}

/// A subdirectory `<prefix>-<pid>` of `dir` to work in, removed with its contents at exit —
/// never files the user already had in `dir`, nor `dir` itself unless this run created it.
class OwnDir {
 public:
  OwnDir(const std::filesystem::path& dir, const std::string& prefix)
      : user_(dir), made_(std::filesystem::create_directories(dir)), path_(dir / (prefix + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  OwnDir(const OwnDir&) = delete;
  OwnDir& operator=(const OwnDir&) = delete;
  ~OwnDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (made_ && std::filesystem::is_empty(user_, ec)) std::filesystem::remove(user_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path user_;
  bool made_;
  std::filesystem::path path_;
};

}  // namespace ckpt_bench
