// The crash test's state: its values at step s are a pure function of s.
#pragma once

#include <ckpt/ckpt.hpp>
#include <cstdint>
#include <vector>

namespace crash_test {
struct State {
  std::int64_t step = 0;
  std::vector<float> weights;   // 1 MiB: saves take long enough to be killed midway
  std::vector<std::int64_t> ids;

  static State at(std::int64_t s) {
    State st;
    st.step = s;
    st.weights.resize(1 << 18);
    std::uint64_t x = static_cast<std::uint64_t>(s) * 0x9E3779B97F4A7C15ull;
    for (auto& w : st.weights) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      w = static_cast<float>(x % 100000) / 1000.0f;
    }
    st.ids = {s, s * 2, s * 3};
    return st;
  }
  friend bool operator==(const State&, const State&) = default;
};
CKPT_FIELDS(State, step, weights, ids)
}  // namespace crash_test
