// ckpt/io/digest.hpp — the CRC-32 of files taken as they are written. While a DigestRecorder
// for a target path is alive, every file io::File::create_exclusive creates under one of the
// target's temporary names — `<target>.tmp-<random>` itself (AtomicFile) or a file inside a
// `<target>.tmp-<random>/` directory (AtomicDir) — has its size and CRC-32 accumulated by
// File::write_all. The CheckpointManager records them in its index when a save commits, so a
// backend that writes through io::File (every built-in one, and any written with AtomicFile or
// AtomicDir) is digested without reading its files back. No recorder: nothing is computed.
#pragma once

#include <algorithm>   // std::find
#include <cstdint>     // sizes, CRCs
#include <filesystem>  // target paths
#include <map>         // digests by name
#include <memory>      // shared slots
#include <mutex>       // the registry
#include <set>         // names written more than once
#include <string>      // names
#include <vector>      // recorders, slots

namespace ckpt::io {

/// Size and CRC-32 of the bytes one File wrote, sequentially from its start.
struct FileDigest {
  std::string name;  ///< relative to the target: "." for the target file itself
  std::uint64_t size = 0;
  std::uint32_t crc32 = 0;
};

class DigestRecorder;
namespace digest_registry {
inline std::mutex& mutex() {
  static std::mutex m;
  return m;
}
inline std::vector<DigestRecorder*>& recorders() {
  static std::vector<DigestRecorder*> v;
  return v;
}
}  // namespace digest_registry

/// Records the digests of the files written under `target`'s temporary names while alive.
/// Recorders of different targets may be alive at once (two managers), on any threads.
class DigestRecorder {
 public:
  explicit DigestRecorder(const std::filesystem::path& target) : prefix_(target.string() + ".tmp-") {
    std::lock_guard lk(digest_registry::mutex());
    digest_registry::recorders().push_back(this);
  }
  DigestRecorder(const DigestRecorder&) = delete;
  DigestRecorder& operator=(const DigestRecorder&) = delete;
  ~DigestRecorder() {
    std::lock_guard lk(digest_registry::mutex());
    auto& v = digest_registry::recorders();
    v.erase(std::find(v.begin(), v.end(), this));
  }

  /// The digest of each file written under the target, by name relative to it; a name
  /// created more than once (a retried temporary) is left out: which one survived is unknown.
  std::map<std::string, FileDigest> written() const {
    std::lock_guard lk(digest_registry::mutex());
    std::map<std::string, FileDigest> out;
    std::set<std::string> twice;
    for (const auto& s : slots_)
      if (!out.emplace(s->name, *s).second) twice.insert(s->name);
    for (const auto& n : twice) out.erase(n);
    return out;
  }

  /// The slot a file created at `path` writes its digest into, or null when no recorder
  /// wants it (called by File::create_exclusive).
  static std::shared_ptr<FileDigest> slot_for(const std::filesystem::path& path) {
    const std::string p = path.string();
    std::lock_guard lk(digest_registry::mutex());
    for (DigestRecorder* r : digest_registry::recorders()) {
      if (p.size() <= r->prefix_.size() || p.compare(0, r->prefix_.size(), r->prefix_) != 0) continue;
      const auto slash = p.find('/', r->prefix_.size());
      auto s = std::make_shared<FileDigest>();
      s->name = slash == std::string::npos ? "." : p.substr(slash + 1);
      r->slots_.push_back(s);
      return s;
    }
    return nullptr;
  }

 private:
  std::string prefix_;
  std::vector<std::shared_ptr<FileDigest>> slots_;  // guarded by the registry's mutex
};

}  // namespace ckpt::io
