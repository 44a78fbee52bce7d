// Shared by the CheckpointManager tests: a small model, warning capture, the steps present
// on disk, a fake clock; and the directory backend of examples/rawdir.hpp (each checkpoint a
// directory) for checking that the manager works with any backend.
#pragma once

#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <ckpt/detail/skeleton.hpp>
#include <ckpt/io/file.hpp>
#include <ckpt/manager.hpp>

#include <chrono>
#include <set>

#include "rawdir.hpp"  // examples/
#include "test_util.hpp"

namespace mt {
struct Model {
  std::vector<float> w = std::vector<float>(64, 0.0f);
  std::int64_t seen = 0;
};
CKPT_FIELDS(Model, w, seen)

inline void fill(Model& m, float v) {
  for (std::size_t i = 0; i < m.w.size(); ++i) m.w[i] = v + static_cast<float>(i);
  m.seen = static_cast<std::int64_t>(v);
}

/// Collects ckpt::warn messages while alive.
struct WarningCapture {
  std::vector<std::string> messages;
  WarningCapture() {
    ckpt::warning_handler() = [this](const std::string& m) { messages.push_back(m); };
  }
  ~WarningCapture() { ckpt::warning_handler() = nullptr; }
  bool any_contains(const std::string& s) const {
    for (const auto& m : messages)
      if (m.find(s) != std::string::npos) return true;
    return false;
  }
};

/// Steps of the `ckpt-<step>.<ext>` entries in `dir` (files or directories).
inline std::set<std::int64_t> steps_on_disk(const std::filesystem::path& dir, const std::string& prefix = "ckpt-") {
  std::set<std::int64_t> s;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto n = e.path().filename().string();
    if (n.rfind(prefix, 0) != 0 || n.find(".tmp-") != std::string::npos) continue;
    s.insert(std::stoll(n.substr(prefix.size())));
  }
  return s;
}
inline std::set<std::int64_t> steps_indexed(const ckpt::CheckpointManager& m) {
  std::set<std::int64_t> s;
  for (const auto& c : m.checkpoints()) s.insert(c.step);
  return s;
}

/// A manual clock: starts at a fixed time and moves when told.
struct FakeClock {
  std::chrono::system_clock::time_point t = std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50));
  std::function<std::chrono::system_clock::time_point()> fn() {
    return [this] { return t; };
  }
};

/// Options for fast tests (no fsync: the commit order is what is tested, not the disk).
inline ckpt::ManagerOptions fast() {
  ckpt::ManagerOptions o;
  o.save_options.fsync = false;
  return o;
}

}  // namespace mt
