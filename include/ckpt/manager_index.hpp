// ckpt/manager_index.hpp — the pieces of CheckpointManager that involve no threads:
// `Backend` (a type-erased format, built-in by name or any user tag via Backend::of<Tag>()),
// `CheckpointInfo`, the retention policy (which checkpoints survive a save) as a pure
// function, the manager's index — a small JSON file replaced atomically, listing each
// committed checkpoint with its step, file, time, metrics and the size and CRC-32 of each of
// its files — the check of those digests before a restore, its reconciliation with the
// directory on open, and the flock that keeps a second manager out.
#pragma once

#include <fcntl.h>     // open flags of the lock file
#include <sys/file.h>  // flock
#include <unistd.h>    // ftruncate, pwrite, pread, getpid, close

#include <algorithm>    // sorting, searching entries
#include <cerrno>       // errno of open/flock
#include <charconv>     // step numbers in file names
#include <chrono>       // checkpoint times
#include <cmath>        // std::isfinite for metrics
#include <exception>    // is_content_error
#include <cstdint>      // steps
#include <filesystem>   // paths
#include <functional>   // type-erased backend
#include <map>          // metrics
#include <optional>     // options
#include <span>         // index bytes
#include <string>       // names
#include <string_view>  // backend names
#include <vector>       // entries

#include "archive/detect.hpp"     // visit_format, builtin formats
#include "checkpoint.hpp"         // warn
#include "concepts.hpp"           // ArchiveFormat
#include "detail/lane.hpp"        // digests of files read on two threads
#include "detail/skeleton.hpp"    // parse_json_limited
#include "io/digest.hpp"          // FileDigest
#include "io/file.hpp"            // AtomicFile, read_file
#include "save_load.hpp"          // save_as / load_as

namespace ckpt {

/// A checkpoint format as the manager uses it: how to write a StateDict to a path, how to
/// read it back, the extension of its files, and whether a checkpoint is a directory.
/// Implicitly constructible from a built-in format's name ("native", "json", ...);
/// Backend::of<Tag>() wraps any backend, including user-defined ones.
struct Backend {
  std::string name;
  std::string extension;   ///< "" when the format declares none
  bool directory = false;  ///< caps.directory: each checkpoint is a directory
  std::function<void(const std::filesystem::path&, const StateDict&, const SaveOptions&)> save;
  std::function<StateDict(const std::filesystem::path&, const LoadOptions&)> load;

  /// The native format.
  Backend() : Backend(of<native_format>()) {}
  /// A built-in format by name; unsupported_error listing the known ones otherwise.
  Backend(std::string_view builtin_name) {  // NOLINT: implicit, so `.format = "json"` works
    visit_format(builtin_name, [&]<class F>(F) { *this = of<F>(); });
  }
  Backend(const char* builtin_name) : Backend(std::string_view(builtin_name)) {}  // NOLINT
  Backend(const std::string& builtin_name) : Backend(std::string_view(builtin_name)) {}  // NOLINT

  /// Any format tag with archive_traits (built-in or user-defined).
  template <ArchiveFormat F>
  static Backend of() {
    Backend b(raw_tag{});
    b.name = std::string(archive_traits<F>::name);
    if constexpr (archive_traits<F>::extensions.size() > 0) b.extension = std::string(archive_traits<F>::extensions[0]);
    b.directory = archive_traits<F>::caps.directory;
    b.save = [](const std::filesystem::path& p, const StateDict& sd, const SaveOptions& o) { save_as<F>(p, sd, o); };
    b.load = [](const std::filesystem::path& p, const LoadOptions& o) { return load_as<F>(p, o); };
    return b;
  }

 private:
  struct raw_tag {};
  explicit Backend(raw_tag) {}
};

/// Which way a best-k metric is better.
enum class BestMode { min, max };

/// One committed checkpoint as the manager's index records it.
struct CheckpointInfo {
  std::int64_t step = 0;
  std::filesystem::path path;
  std::chrono::system_clock::time_point time;  ///< when it was committed
  std::map<std::string, double> metrics;      ///< as passed to save() (NaN stays NaN)
  std::string format;                         ///< backend name it was written with
  bool preserved = false;  ///< kept for good by keep_every_n_hours
  bool corrupt = false;    ///< failed verification on restore; skipped, never kept
  /// Size and CRC-32 of every file of the checkpoint, recorded when it was committed: "."
  /// names a single-file checkpoint, other names are paths inside its directory. nullopt:
  /// none recorded (an index written before digests existed, or a checkpoint adopted from the
  /// disk); only the format's own checks apply to it.
  std::optional<std::vector<io::FileDigest>> files{};
};

/// The retention knobs (a subset of ManagerOptions, so the policy is testable alone).
struct RetentionPolicy {
  std::optional<std::size_t> max_to_keep = 5;     ///< newest N; nullopt keeps all
  std::optional<std::int64_t> keep_every_n_steps{};  ///< steps that are multiples of N
  std::optional<double> keep_every_n_hours{};        ///< one per N hours, TF-style, kept for good
  std::size_t best_k = 0;                          ///< best K by best_metric
  std::string best_metric{};
  BestMode best_mode = BestMode::min;
};

/// Decide which entries survive. `entries` are sorted by step; `just_saved` (the step of the
/// checkpoint this save committed) is always kept, as is the newest healthy one. An entry
/// survives if any rule keeps it: newest max_to_keep healthy ones; steps divisible by
/// keep_every_n_steps; the best_k healthy ones by best_metric (ties favour the newer step;
/// entries without a finite value of the metric do not compete); already preserved ones; and,
/// going oldest first through the rest, one whenever keep_every_n_hours have passed since the
/// last preserved time (marked preserved, `last_preserved` advanced — TF's rule). Corrupt
/// entries are kept by no rule. Returns the indices to delete, ascending.
inline std::vector<std::size_t> apply_retention(std::vector<CheckpointInfo>& entries, const RetentionPolicy& p,
                                                std::chrono::system_clock::time_point& last_preserved,
                                                std::optional<std::int64_t> just_saved) {
  std::vector<bool> keep(entries.size(), false);
  std::vector<std::size_t> healthy;
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (!entries[i].corrupt) healthy.push_back(i);
  if (!healthy.empty()) keep[healthy.back()] = true;  // the newest is never deleted
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (just_saved && e.step == *just_saved && !e.corrupt) keep[i] = true;
    if (e.corrupt) continue;
    if (e.preserved) keep[i] = true;
    if (p.keep_every_n_steps && *p.keep_every_n_steps > 0 && e.step % *p.keep_every_n_steps == 0) keep[i] = true;
  }
  const std::size_t window = p.max_to_keep ? std::min(*p.max_to_keep, healthy.size()) : healthy.size();
  for (std::size_t k = healthy.size() - window; k < healthy.size(); ++k) keep[healthy[k]] = true;
  if (p.best_k > 0) {
    std::vector<std::size_t> ranked;
    for (auto i : healthy) {
      auto m = entries[i].metrics.find(p.best_metric);
      if (m != entries[i].metrics.end() && std::isfinite(m->second)) ranked.push_back(i);
    }
    std::stable_sort(ranked.begin(), ranked.end(), [&](std::size_t a, std::size_t b) {
      const double va = entries[a].metrics.at(p.best_metric), vb = entries[b].metrics.at(p.best_metric);
      if (va != vb) return p.best_mode == BestMode::min ? va < vb : va > vb;
      return entries[a].step > entries[b].step;
    });
    for (std::size_t k = 0; k < ranked.size() && k < p.best_k; ++k) keep[ranked[k]] = true;
  }
  if (p.keep_every_n_hours) {
    const auto period = std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double, std::ratio<3600>>(*p.keep_every_n_hours));
    for (auto i : healthy) {
      if (keep[i]) continue;
      if (entries[i].time - last_preserved >= period) {
        entries[i].preserved = true;
        keep[i] = true;
        last_preserved = entries[i].time;
      }
    }
  }
  std::vector<std::size_t> doomed;
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (!keep[i]) doomed.push_back(i);
  return doomed;
}

namespace detail {
inline double to_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}
inline std::chrono::system_clock::time_point from_seconds(double s) {
  // A damaged index may hold any number: clamp to what the clock's int64 nanoseconds can hold
  // (converting an out-of-range double is undefined behaviour).
  if (!std::isfinite(s)) s = 0;
  s = std::clamp(s, -9.0e9, 9.0e9);
  return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(s)));
}
}  // namespace detail

namespace detail {
/// A digest's file name: "." or a relative path inside the checkpoint (no "..", no "." parts).
inline bool valid_digest_name(const std::string& n) {
  if (n == ".") return true;
  if (n.empty() || n.front() == '/') return false;
  for (const auto& part : std::filesystem::path(n))
    if (part.empty() || part == "." || part == "..") return false;
  return true;
}
inline std::vector<io::FileDigest> digests_from_json(const Value& list, const std::string& file) {
  std::vector<io::FileDigest> v;
  for (const auto& j : list) {
    io::FileDigest d;
    d.name = j.at("name").get<std::string>();
    const auto size = integer_as<std::uint64_t>(j.at("size"));
    const auto crc = integer_as<std::uint32_t>(j.at("crc32"));
    if (!valid_digest_name(d.name) || !size || !crc)
      throw format_error("invalid file digest in manager index", file, format_error::no_offset, "", "{name inside the checkpoint, size, crc32}", json_excerpt(j));
    d.size = *size;
    d.crc32 = *crc;
    v.push_back(std::move(d));
  }
  return v;
}
}  // namespace detail

/// The manager's index file: {"format": "ckpt-manager-index", "version": 1,
/// "last_preserved_time": <unix seconds>, "checkpoints": [{"step", "file", "time", "metrics",
/// "format", "preserved", "corrupt", "files": [{"name", "size", "crc32"}, ...]}, ...]}.
/// Checkpoints are named relative to the directory; "files" (absent in indexes written before
/// digests, which still load) as CheckpointInfo::files says.
struct ManagerIndex {
  static constexpr std::string_view file_name = "checkpoints.json";
  static constexpr std::uint64_t max_bytes = std::uint64_t{64} << 20;

  std::vector<CheckpointInfo> entries;  ///< sorted by step
  std::chrono::system_clock::time_point last_preserved;

  /// Parse the index in `dir`; format_error (with the file) when it is malformed.
  static ManagerIndex read(const std::filesystem::path& dir) {
    const auto path = dir / file_name;
    const std::string file = path.string();
    io::File f = io::File::open_read(path);
    if (f.size() > max_bytes) throw format_error("manager index larger than " + std::to_string(max_bytes) + " bytes", file, 0);
    std::string text(static_cast<std::size_t>(f.size()), '\0');
    f.pread_all(std::as_writable_bytes(std::span(text)), 0);
    return from_json(detail::parse_json_limited(text, file), dir, file);
  }

  /// The index from its JSON document (entries' paths are made under `dir`; `file` names the
  /// source in errors). Also how a distributed manager's ranks receive the coordinator's index.
  static ManagerIndex from_json(const Value& doc, const std::filesystem::path& dir, const std::string& file) {
    ManagerIndex ix;
    try {
      if (!doc.is_object() || doc.value("format", "") != "ckpt-manager-index") throw format_error("not a ckpt manager index", file, 0);
      if (!detail::integer_member_is(doc, "version", 1)) throw unsupported_error("unsupported manager index version " + detail::json_excerpt(doc.at("version")), file);
      ix.last_preserved = detail::from_seconds(doc.at("last_preserved_time").get<double>());
      for (const auto& j : doc.at("checkpoints")) {
        CheckpointInfo e;
        const auto step = detail::integer_as<std::int64_t>(j.at("step"));
        if (!step) throw format_error("invalid step in manager index", file, format_error::no_offset, "", "an integer", detail::json_excerpt(j.at("step")));
        e.step = *step;
        const auto name = j.at("file").get<std::string>();
        if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
          throw format_error("invalid checkpoint file name", file, format_error::no_offset, "", "a name inside the directory", "'" + name + "'");
        e.path = dir / name;
        e.time = detail::from_seconds(j.at("time").get<double>());
        for (const auto& [k, v] : j.at("metrics").items()) e.metrics[k] = v.is_number() ? v.get<double>() : std::nan("");
        e.format = j.at("format").get<std::string>();
        e.preserved = j.value("preserved", false);
        e.corrupt = j.value("corrupt", false);
        if (const auto f = j.find("files"); f != j.end()) e.files = detail::digests_from_json(*f, file);
        ix.entries.push_back(std::move(e));
      }
    } catch (const nlohmann::json::exception& x) {
      throw format_error(std::string("malformed manager index: ") + x.what(), file, 0);
    }
    std::sort(ix.entries.begin(), ix.entries.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
    for (std::size_t i = 1; i < ix.entries.size(); ++i)
      if (ix.entries[i].step == ix.entries[i - 1].step) throw format_error("duplicate step " + std::to_string(ix.entries[i].step) + " in manager index", file, 0);
    return ix;
  }

  /// The index as its JSON document (what write() stores).
  Value to_json() const {
    Value list = Value::array();
    for (const auto& e : entries) {
      Value m = Value::object();
      for (const auto& [k, v] : e.metrics) m[k] = std::isfinite(v) ? Value(v) : Value(nullptr);
      Value j{{"step", e.step}, {"file", e.path.filename().string()}, {"time", detail::to_seconds(e.time)},
              {"metrics", std::move(m)}, {"format", e.format}, {"preserved", e.preserved}, {"corrupt", e.corrupt}};
      if (e.files) {
        j["files"] = Value::array();
        for (const auto& d : *e.files) j["files"].push_back(Value{{"name", d.name}, {"size", d.size}, {"crc32", d.crc32}});
      }
      list.push_back(std::move(j));
    }
    return Value{{"format", "ckpt-manager-index"}, {"version", 1}, {"last_preserved_time", detail::to_seconds(last_preserved)},
                 {"checkpoints", std::move(list)}};
  }

  /// Replace the index in `dir` atomically (tmp + fsync + rename + directory fsync).
  void write(const std::filesystem::path& dir, bool durable = true) const {
    const Value doc = to_json();
    io::AtomicFile f(dir / file_name, durable);
    f.writer().write_string(doc.dump(1));
    f.writer().write_string("\n");
    f.commit();
  }
};

namespace detail {
/// Damage in a checkpoint's bytes (a corrupt one is marked so and skipped from then on), as
/// opposed to an OS error (a transient one may pass) or a format this build cannot read.
inline bool is_content_error(const std::exception& x) {
  if (auto* io = dynamic_cast<const io_error*>(&x)) return io->code() == 0;  // 0: short file, not errno
  if (dynamic_cast<const unsupported_error*>(&x)) return false;             // a newer writer, not damage
  return dynamic_cast<const error*>(&x) != nullptr;
}

/// CRC-32 of the first `size` bytes of `f`, read in pieces by two threads (see Lane::split).
inline std::uint32_t crc_of_file(const io::File& f, std::uint64_t size) {
  Lane lane;  // its thread starts only for a file large enough to split
  const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(size, Lane::piece_bytes));
  std::vector<std::byte> buf(2 * piece);
  return lane.split(size, [&](int side, std::uint64_t at, std::size_t n) {
    const std::span<std::byte> part(buf.data() + static_cast<std::size_t>(side) * piece, n);
    f.pread_all(part, at);
    return std::span<const std::byte>(part);
  });
}

/// The regular files of the checkpoint at `path`, by digest name ("." for a single file).
inline std::vector<std::pair<std::string, std::filesystem::path>> checkpoint_files(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) throw io_error("the backend's save left no checkpoint", path.string(), ec ? ec.value() : ENOENT);
  if (!fs::is_directory(st)) return {{".", path}};
  std::vector<std::pair<std::string, fs::path>> out;
  for (const auto& d : fs::recursive_directory_iterator(path))
    if (d.is_regular_file()) out.emplace_back(d.path().lexically_relative(path).generic_string(), d.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// The digests of every file of the checkpoint a save just put at `path`: those `written`
/// recorded as the bytes went out (io::DigestRecorder) when the size on disk agrees; any other
/// file (a backend that writes other than through io::File) is read back once.
inline std::vector<io::FileDigest> digest_checkpoint(const std::filesystem::path& path, const std::map<std::string, io::FileDigest>& written) {
  std::vector<io::FileDigest> out;
  for (const auto& [name, p] : checkpoint_files(path)) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(p, ec);
    if (const auto w = written.find(name); !ec && w != written.end() && w->second.size == size) {
      out.push_back(w->second);
      continue;
    }
    const io::File f = io::File::open_read(p);
    const auto n = f.size();
    out.push_back({name, n, crc_of_file(f, n)});
  }
  return out;
}

/// Check every file of checkpoint `e` against the digests recorded at its commit (there must
/// be some): corrupt_error naming the file when one is missing, has another size or another
/// CRC-32; io_error (with errno: not damage) when one cannot be read.
inline void check_digests(const CheckpointInfo& e) {
  for (const auto& d : *e.files) {
    const auto p = d.name == "." ? e.path : e.path / d.name;
    const std::string file = p.string();
    std::error_code ec;
    if (!std::filesystem::exists(p, ec) && !ec)
      throw corrupt_error("a file of the checkpoint is missing", file, "", "the file committed (" + std::to_string(d.size) + " bytes)", "no file");
    const io::File f = io::File::open_read(p);
    const auto size = f.size();
    if (size != d.size)
      throw corrupt_error("file size differs from the one committed (truncated or overwritten)", file, "", std::to_string(d.size) + " bytes", std::to_string(size) + " bytes");
    if (const auto crc = crc_of_file(f, size); crc != d.crc32)
      throw corrupt_error("checksum mismatch: the file differs from the one committed", file, "", "crc32 " + crc_hex(d.crc32), "crc32 " + crc_hex(crc));
  }
}

/// Load checkpoint `e` with `b` for a restore. `verify`: its files are checked against their
/// digests first, and the format then checks its own checksums only where none were recorded
/// (or `lo` asks for it): the bytes were just read and found to be those committed.
inline StateDict load_for_restore(const Backend& b, const CheckpointInfo& e, LoadOptions lo, bool verify) {
  if (verify && e.files) {
    check_digests(e);
    lo.verify = lo.verify.value_or(false);
  } else if (verify) {
    lo.verify = true;
  }
  return b.load(e.path, lo);
}

/// The step of a checkpoint named `<prefix>-<step><ext>` (canonical decimal), else nullopt.
inline std::optional<std::int64_t> checkpoint_step(const std::string& name, const std::string& prefix, const std::string& ext) {
  const std::string head = prefix + "-";
  if (name.size() <= head.size() + ext.size() || name.compare(0, head.size(), head) != 0) return std::nullopt;
  if (!ext.empty() && name.compare(name.size() - ext.size(), ext.size(), ext) != 0) return std::nullopt;
  const char* b = name.data() + head.size();
  const char* e = name.data() + name.size() - ext.size();
  std::int64_t step = 0;
  auto [p, ec] = std::from_chars(b, e, step);
  if (ec != std::errc{} || p != e || step < 0 || std::to_string(step) != std::string(b, e)) return std::nullopt;
  return step;
}

/// Clean up after an interrupted save in `dir`: a directory checkpoint moved aside
/// (`<prefix>-N.tmp-old-*`) whose own name is missing — the save died between its two renames —
/// is renamed back; every other `<prefix>-*.tmp-*` file or directory (checkpoints being
/// written, directories moved aside and replaced) and the index's temporaries are removed.
inline void remove_temporaries(const std::filesystem::path& dir, const std::string& prefix) {
  std::vector<std::filesystem::path> ours;
  for (const auto& d : std::filesystem::directory_iterator(dir)) {
    const auto name = d.path().filename().string();
    const auto t = name.find(io::temp_marker);
    if (t == std::string::npos) continue;
    const std::string base = name.substr(0, t);
    if (base == ManagerIndex::file_name || base.rfind(prefix + "-", 0) == 0) ours.push_back(d.path());
  }
  std::sort(ours.begin(), ours.end());  // the same choice whatever order the directory lists
  std::size_t removed = 0;
  for (const auto& p : ours) {
    const auto name = p.filename().string();
    const auto final_path = dir / name.substr(0, name.find(io::temp_marker));
    std::error_code ec;
    if (name.find(io::moved_aside_marker) != std::string::npos && !std::filesystem::exists(final_path, ec)) {
      std::filesystem::rename(p, final_path, ec);
      if (ec) throw io_error("cannot restore a checkpoint directory moved aside by an interrupted save", p.string(), ec.value());
      warn("restored '" + final_path.string() + "', moved aside by a save interrupted before its replacement was in place");
      continue;
    }
    std::filesystem::remove_all(p, ec);
    if (ec) throw io_error("cannot remove the temporary of an interrupted save", p.string(), ec.value());
    ++removed;
  }
  if (removed) warn("removed " + std::to_string(removed) + " temporary file(s) left by an interrupted save in '" + dir.string() + "'");
}

/// Read the index of `dir` (a fresh one, started at `now`, when there is none or it is
/// unreadable) and reconcile it with the disk: entries whose file is gone are dropped and
/// complete checkpoints of `backend` the index lacks are adopted (time: their mtime; no
/// metrics). Nothing is deleted. The index is rewritten when anything changed.
inline ManagerIndex open_index(const std::filesystem::path& dir, const std::string& prefix, const Backend& backend,
                               std::chrono::system_clock::time_point now, bool durable) {
  ManagerIndex ix;
  bool changed = false;
  std::error_code ec;
  if (std::filesystem::exists(dir / ManagerIndex::file_name, ec)) {
    try {
      ix = ManagerIndex::read(dir);
    } catch (const error& e) {
      warn(std::string("manager index unreadable, rebuilding it from the directory: ") + e.what());
      ix = ManagerIndex{};
      ix.last_preserved = now;
      changed = true;
    }
  } else {
    ix.last_preserved = now;
    changed = true;
  }
  std::vector<CheckpointInfo> kept;
  for (auto& e : ix.entries) {
    if (std::filesystem::exists(e.path, ec)) {
      kept.push_back(std::move(e));
    } else {
      warn("checkpoint '" + e.path.string() + "' is in the index but not on disk; dropping it from the index");
      changed = true;
    }
  }
  ix.entries = std::move(kept);
  for (const auto& d : std::filesystem::directory_iterator(dir)) {
    const auto step = checkpoint_step(d.path().filename().string(), prefix, backend.extension);
    if (!step || (backend.directory ? !d.is_directory() : !d.is_regular_file())) continue;
    if (std::any_of(ix.entries.begin(), ix.entries.end(), [&](const auto& e) { return e.step == *step; })) continue;
    CheckpointInfo e;
    e.step = *step;
    e.path = d.path();
    e.format = backend.name;
    const auto ft = std::filesystem::last_write_time(d.path(), ec);
    e.time = ec ? now : std::chrono::time_point_cast<std::chrono::system_clock::duration>(std::chrono::file_clock::to_sys(ft));
    warn("adopting checkpoint '" + d.path().string() + "', which is on disk but not in the index (its metrics are unknown)");
    ix.entries.push_back(std::move(e));
    changed = true;
  }
  std::sort(ix.entries.begin(), ix.entries.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  if (changed) ix.write(dir, durable);
  return ix;
}

/// An exclusive flock on a file, held for the object's lifetime; io_error (EWOULDBLOCK) naming
/// the holder's pid when another open file holds it.
class DirLock {
 public:
  static constexpr std::string_view file_name = "checkpoints.lock";
  explicit DirLock(const std::filesystem::path& p) : path_(p.string()) {
    do fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) throw io_error("cannot open lock file", path_, errno);
    int rc;
    do rc = ::flock(fd_, LOCK_EX | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int e = errno;
      char buf[32] = {};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      if (e == EWOULDBLOCK)
        throw io_error("checkpoint directory is locked by another CheckpointManager" + (holder.empty() ? std::string() : " (process " + holder + ")"), path_, e);
      throw io_error("cannot lock", path_, e);
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    }  // the pid is a courtesy for the message above; failing to write it is harmless
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  std::string path_;
  int fd_ = -1;
};
}  // namespace detail

}  // namespace ckpt
