// bench_util.hpp — what the benchmark programs share: medians with min and max, sizes as
// "1G" / "256M" / "64K" / bytes.
#pragma once

#include <algorithm>
#include <cstdint>
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

}  // namespace ckpt_bench
