// Shared by the CheckpointManager tests: a small model, warning capture, the steps present
// on disk, a fake clock, and a directory backend (each checkpoint a directory) for checking
// that the manager works with any backend.
#pragma once

#include <catch2/catch.hpp>
#include <ckpt/ckpt.hpp>
#include <ckpt/detail/skeleton.hpp>
#include <ckpt/io/file.hpp>
#include <ckpt/manager.hpp>

#include <chrono>
#include <set>

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

// ---- a directory backend: one raw file per tensor plus index.json, written with AtomicDir ----
namespace dirfmt {
class Writer {
 public:
  Writer(const std::filesystem::path& dir, const ckpt::SaveOptions& o) : out_(dir, o.fsync) {}
  void begin_group(const ckpt::KeyPath& p, ckpt::Container c) { tree_.begin_group(p, c); }
  void end_group(const ckpt::KeyPath& p) { tree_.end_group(p); }
  void write_value(const ckpt::KeyPath& p, const ckpt::Value& v) { tree_.value(p, v); }
  void write_tensor(const ckpt::KeyPath& p, const ckpt::TensorView& t) {
    const std::string file = "t" + std::to_string(index_.size()) + ".bin";
    out_.write_file(file, t.bytes());
    tree_.tensor(p, index_.size());
    index_.push_back({{"key", p.keys()}, {"dtype", ckpt::name(t.dtype)}, {"shape", t.shape}, {"file", file}});
  }
  void commit() {
    const std::string idx = ckpt::Value{{"tensors", index_}, {"tree", tree_.root()}}.dump();
    out_.write_file("index.json", std::as_bytes(std::span(idx)));
    out_.commit();
  }

 private:
  ckpt::io::AtomicDir out_;
  ckpt::detail::SkeletonBuilder tree_;
  ckpt::Value index_ = ckpt::Value::array();
};
class Reader {
 public:
  Reader(const std::filesystem::path& dir, const ckpt::LoadOptions&) : dir_(dir) {
    const auto bytes = ckpt::io::read_file(dir / "index.json");
    index_ = ckpt::detail::parse_json_limited(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), (dir / "index.json").string());
    for (const auto& j : index_.at("tensors")) {
      ckpt::EntryInfo e;
      for (const auto& k : j.at("key")) e.path = e.path / k.get<std::string>();
      e.dtype = *ckpt::dtype_from_name(j.at("dtype").get<std::string>());
      e.shape = j.at("shape").get<ckpt::Shape>();
      e.nbytes = e.stored_nbytes = *ckpt::checked_nbytes(e.dtype, e.shape);
      entries_.push_back(e);
    }
  }
  const std::vector<ckpt::EntryInfo>& entries() const { return entries_; }
  ckpt::Value skeleton() const { return index_.at("tree"); }
  void read_into(std::size_t i, std::span<std::byte> dst) {
    ckpt::io::File f = ckpt::io::File::open_read(dir_ / index_["tensors"][i]["file"].get<std::string>());
    if (f.size() != dst.size()) throw ckpt::format_error("tensor file has the wrong size", f.path(), 0);
    f.pread_all(dst, 0);
  }
  ckpt::Tensor read_tensor(std::size_t i) {
    ckpt::Tensor t(entries_[i].dtype, entries_[i].shape);
    read_into(i, {t.mutable_data(), t.nbytes()});
    return t;
  }

 private:
  std::filesystem::path dir_;
  ckpt::Value index_;
  std::vector<ckpt::EntryInfo> entries_;
};
struct format {};
}  // namespace dirfmt
}  // namespace mt

template <>
struct ckpt::archive_traits<mt::dirfmt::format> {
  static constexpr std::string_view name = "testdir";
  static constexpr std::array<std::string_view, 1> extensions{".d"};
  static constexpr ArchiveCaps caps{.metadata_tree = true, .directory = true};
  static bool sniff(std::span<const std::byte>) { return false; }
  using output_archive = mt::dirfmt::Writer;
  using input_archive = mt::dirfmt::Reader;
};
