// ckpt/io/file.hpp — POSIX file I/O the rest of the library builds on: an RAII descriptor,
// full write/pread loops (EINTR, short writes), errors that carry path and errno, fsync of a
// file and of its parent directory, buffered sequential writers, and AtomicFile — write to
// `name.tmp-<random>`, fsync, rename over the final name, fsync the directory — which every
// save goes through, so a failed or killed save never damages the previous file. Saves start
// writeback as they go (durable ones, and ones that replace a file) and hand the page cache of
// the file they replace to the new one (drop_cached_pages).
#pragma once

#include <fcntl.h>     // open flags, sync_file_range, posix_fadvise
#include <stdio.h>     // rename, renameat2 and RENAME_EXCHANGE (glibc, _GNU_SOURCE)
#include <sys/stat.h>  // fstat
#include <unistd.h>    // read/write/fsync/close

#include <cerrno>       // errno
#include <cstddef>      // std::byte
#include <algorithm>    // std::min
#include <cstdint>      // offsets
#include <cstring>      // std::memcpy
#include <filesystem>   // paths
#include <functional>   // fault hook
#include <memory>       // digest slot
#include <optional>     // lazily built writer
#include <utility>      // std::exchange
#include <random>       // temp-name suffix
#include <span>         // byte spans
#include <string>       // paths
#include <vector>       // buffers

#include "../detail/crc32.hpp"  // digests of files as they are written
#include "../detail/lane.hpp"   // ... of large writes on a second thread, during write(2)
#include "../error.hpp"         // io_error
#include "digest.hpp"           // DigestRecorder

namespace ckpt::io {

namespace fs = std::filesystem;

/// Test hook for fault injection: called before every write with (path, offset, size); it may
/// return an errno value to make that write fail (0 = proceed). Null in normal operation.
inline std::function<int(const std::string&, std::uint64_t, std::size_t)>& write_fault_hook() {
  static std::function<int(const std::string&, std::uint64_t, std::size_t)> hook;
  return hook;
}

/// The steps of a save other than write(2) that can fail or be interrupted, named for the
/// fault hook below.
enum class SyncStep : std::uint8_t { fsync, close, rename, exchange, fsync_dir };
inline const char* sync_step_name(SyncStep s) noexcept {
  switch (s) {
    case SyncStep::fsync: return "fsync";
    case SyncStep::close: return "close";
    case SyncStep::rename: return "rename";
    case SyncStep::exchange: return "exchange";
    case SyncStep::fsync_dir: return "fsync_dir";
  }
  return "?";
}

/// Test hook for fault injection: called before each SyncStep with (step, path); it may return
/// an errno value to make that step fail as the system call would (0 = proceed), or end the
/// process there to stage a crash. Null in normal operation.
inline std::function<int(SyncStep, const std::string&)>& sync_fault_hook() {
  static std::function<int(SyncStep, const std::string&)> hook;
  return hook;
}
/// The errno the hook injects for `step` on `path` (0: none).
inline int injected_fault(SyncStep step, const std::string& path) {
  auto& hook = sync_fault_hook();
  return hook ? hook(step, path) : 0;
}

/// An owned file descriptor, closed on destruction.
class File {
 public:
  File() = default;
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  File(File&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), digest_(std::move(o.digest_)), lane_(std::move(o.lane_)) {}
  File& operator=(File&& o) noexcept {
    if (this != &o) {
      close_quietly();
      fd_ = std::exchange(o.fd_, -1);
      path_ = std::move(o.path_);
      digest_ = std::move(o.digest_);
      lane_ = std::move(o.lane_);
    }
    return *this;
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() { close_quietly(); }

  /// Open for reading; io_error with errno when it cannot. A directory is io_error EISDIR here,
  /// whatever st_size the filesystem gives it (4096 on ext4, 0 on btrfs), not an empty file.
  static File open_read(const fs::path& p) {
    int fd;
    do fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) throw io_error("cannot open for reading", p.string(), errno);
    File f(fd, p.string());
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw io_error("cannot stat", p.string(), errno);
    if (S_ISDIR(st.st_mode)) throw io_error("cannot open for reading", p.string(), EISDIR);
    return f;
  }
  /// Create a new file (fails if it exists) for writing. Under a DigestRecorder's target,
  /// write_all accumulates the file's size and CRC-32 for it.
  static File create_exclusive(const fs::path& p, int mode = 0644) {
    int fd;
    do fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) throw io_error("cannot create", p.string(), errno);
    File f(fd, p.string());
    f.digest_ = DigestRecorder::slot_for(p);
    return f;
  }

  int fd() const noexcept { return fd_; }
  const std::string& path() const noexcept { return path_; }
  bool is_open() const noexcept { return fd_ >= 0; }

  std::uint64_t size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw io_error("cannot stat", path_, errno);
    return static_cast<std::uint64_t>(st.st_size);
  }

  /// Write all bytes at the current position (loops over short writes and EINTR). A file a
  /// DigestRecorder wants has their CRC-32 added to its digest: a large write's on a second
  /// thread while this one is in write(2), so it costs next to nothing.
  void write_all(std::span<const std::byte> data, std::uint64_t offset_for_hook = 0) {
    if (auto& hook = write_fault_hook()) {
      if (int e = hook(path_, offset_for_hook, data.size())) throw io_error("cannot write " + std::to_string(data.size()) + " bytes at offset " + std::to_string(offset_for_hook), path_, e);
    }
    if (digest_ && data.size() >= detail::Lane::min_async_bytes) {
      if (!lane_) lane_ = std::make_unique<detail::Lane>();
      lane_->start(digest_->crc32, data);  // the caller's bytes stay put until wait()
      try {
        write_bytes(data);
      } catch (...) {
        (void)lane_->wait();
        throw;
      }
      digest_->crc32 = lane_->wait();
      digest_->size += data.size();
      return;
    }
    write_bytes(data);
    if (digest_) {
      digest_->crc32 = detail::crc32_update(digest_->crc32, data);
      digest_->size += data.size();
    }
  }
  /// Read exactly dst.size() bytes at `offset`; io_error on error, format_error-free: a short
  /// file is reported as an io_error saying how many bytes were missing.
  void pread_all(std::span<std::byte> dst, std::uint64_t offset) const {
    std::byte* p = dst.data();
    std::size_t left = dst.size();
    while (left) {
      const std::size_t chunk = left < (std::size_t{1} << 30) ? left : (std::size_t{1} << 30);
      const ssize_t n = ::pread(fd_, p, chunk, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw io_error("cannot read at offset " + std::to_string(offset), path_, errno);
      }
      if (n == 0) throw io_error("unexpected end of file: " + std::to_string(left) + " bytes missing at offset " + std::to_string(offset), path_);
      p += n;
      left -= static_cast<std::size_t>(n);
      offset += static_cast<std::uint64_t>(n);
    }
  }
  void fsync() {
    if (const int e = injected_fault(SyncStep::fsync, path_)) throw io_error("cannot fsync", path_, e);
    if (::fsync(fd_) != 0) throw io_error("cannot fsync", path_, errno);
  }
  /// Ask the kernel to start writing [offset, offset + n) to disk now, without waiting for it
  /// (Linux sync_file_range; elsewhere nothing). Durable saves call it as they go, so the disk
  /// works while later bytes are still being copied and the final fsync has little left to
  /// wait for. Errors are left for that fsync to report.
  void start_writeback([[maybe_unused]] std::uint64_t offset, [[maybe_unused]] std::uint64_t n) const noexcept {
#ifdef __linux__
    (void)::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), SYNC_FILE_RANGE_WRITE);
#endif
  }
  void close() {
    if (fd_ >= 0) {
      const int fd = std::exchange(fd_, -1);
      const int injected = injected_fault(SyncStep::close, path_);
      if (::close(fd) != 0 && errno != EINTR) throw io_error("cannot close", path_, errno);
      if (injected) throw io_error("cannot close", path_, injected);
    }
  }

 private:
  /// The write(2) loop of write_all.
  void write_bytes(std::span<const std::byte> data) {
    const std::byte* p = data.data();
    std::size_t left = data.size();
    while (left) {
      const std::size_t chunk = left < (std::size_t{1} << 30) ? left : (std::size_t{1} << 30);
      const ssize_t n = ::write(fd_, p, chunk);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw io_error("cannot write " + std::to_string(left) + " bytes", path_, errno);
      }
      if (n == 0) throw io_error("write returned 0 bytes", path_, ENOSPC);
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  void close_quietly() noexcept {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }
  int fd_ = -1;
  std::string path_;
  std::shared_ptr<FileDigest> digest_;  // null unless a DigestRecorder wants this file
  std::unique_ptr<detail::Lane> lane_;   // its large writes' CRC, started on first use
};

/// fsync a directory so that a rename or create inside it is durable.
inline void fsync_dir(const fs::path& dir) {
  const fs::path d = dir.empty() ? fs::path(".") : dir;
  if (const int e = injected_fault(SyncStep::fsync_dir, d.string())) throw io_error("cannot fsync directory", d.string(), e);
  int fd;
  do fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) throw io_error("cannot open directory to fsync", d.string(), errno);
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) throw io_error("cannot fsync directory", d.string(), e);
}

/// A random suffix for temporary names.
inline std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^ (static_cast<std::uint64_t>(::getpid()) << 32)};
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s;
  for (int i = 0; i < 10; ++i) s += digits[rng() % 36];
  return s;
}

/// The marker every temporary name carries; CheckpointManager and cleanup code look for it.
inline constexpr std::string_view temp_marker = ".tmp-";
/// What a directory replaced without RENAME_EXCHANGE is renamed to while its successor moves
/// in: `<name>.tmp-old-<random>`. Cleanup restores it when `<name>` is missing (a crash came
/// between the two renames) and removes it otherwise.
inline constexpr std::string_view moved_aside_marker = ".tmp-old-";

/// rename(2), through the fault hook; io_error naming both paths.
inline void rename_path(const fs::path& from, const fs::path& to, const char* what) {
  int e = injected_fault(SyncStep::rename, to.string());
  if (!e && ::rename(from.c_str(), to.c_str()) != 0) e = errno;
  if (e) throw io_error(std::string(what) + " ('" + from.string() + "')", to.string(), e);
}

/// Swap two existing paths in one atomic step (Linux renameat2 RENAME_EXCHANGE). False where
/// the system or the filesystem cannot (the caller then uses two renames); io_error otherwise.
inline bool exchange_paths(const fs::path& a, const fs::path& b) {
#if defined(__linux__) && defined(RENAME_EXCHANGE)
  int e = injected_fault(SyncStep::exchange, b.string());
  if (!e && ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) e = errno;
  if (!e) return true;
  if (e == EINVAL || e == ENOSYS || e == ENOTSUP || e == EOPNOTSUPP) return false;
  throw io_error("cannot exchange '" + a.string() + "' with the previous checkpoint", b.string(), e);
#else
  (void)a;
  (void)b;
  return false;
#endif
}

/// Sequential byte sink that archives write into. Tracks the position; pads to alignments.
class Writer {
 public:
  virtual ~Writer() = default;
  virtual void write(std::span<const std::byte> data) = 0;
  virtual void flush() {}
  virtual std::uint64_t position() const = 0;
  /// Name of what is written (for messages).
  virtual const std::string& path() const = 0;

  void write(const void* p, std::size_t n) { write({static_cast<const std::byte*>(p), n}); }
  void write_string(std::string_view s) { write(s.data(), s.size()); }
  /// Write zero bytes until position() is a multiple of `alignment`.
  void pad_to(std::uint64_t alignment) {
    static constexpr std::byte zeros[4096] = {};
    std::uint64_t rem = position() % alignment;
    if (!rem) return;
    std::uint64_t n = alignment - rem;
    while (n) {
      const auto k = n < sizeof(zeros) ? n : sizeof(zeros);
      write({zeros, static_cast<std::size_t>(k)});
      n -= k;
    }
  }
};

/// Durable saves, and saves that replace a file, start writeback every this many bytes (see
/// File::start_writeback and AtomicFile).
inline constexpr std::size_t writeback_bytes = std::size_t{16} << 20;

/// Buffered writer on a File: small writes are gathered in a buffer, large ones go straight
/// to write(2) so big tensors are not copied. With `writeback_every` > 0 it writes large data in
/// pieces of that size and starts the disk writing each one.
class FileWriter final : public Writer {
 public:
  explicit FileWriter(File& f, std::size_t buffer_bytes = std::size_t{1} << 20, std::size_t writeback_every = 0)
      : file_(f), writeback_every_(writeback_every) {
    buf_.reserve(buffer_bytes);
  }
  void write(std::span<const std::byte> data) override {
    if (buf_.size() + data.size() <= buf_.capacity()) {
      buf_.insert(buf_.end(), data.begin(), data.end());
    } else {
      flush();
      if (data.size() >= buf_.capacity()) {
        const std::size_t piece = writeback_every_ ? writeback_every_ : data.size();
        for (std::size_t at = 0; at < data.size(); at += piece) {
          const auto part = data.subspan(at, std::min(piece, data.size() - at));
          file_.write_all(part, written_);
          written_ += part.size();
          start_writeback();
        }
      } else {
        buf_.insert(buf_.end(), data.begin(), data.end());
      }
    }
  }
  void flush() override {
    if (!buf_.empty()) {
      file_.write_all(buf_, written_);
      written_ += buf_.size();
      buf_.clear();
      start_writeback();
    }
  }
  std::uint64_t position() const override { return written_ + buf_.size(); }
  const std::string& path() const override { return file_.path(); }

 private:
  void start_writeback() {
    if (writeback_every_ && written_ - started_ >= writeback_every_) {
      file_.start_writeback(started_, written_ - started_);
      started_ = written_;
    }
  }
  File& file_;
  std::vector<std::byte> buf_;
  std::uint64_t written_ = 0, started_ = 0;  // bytes written; bytes whose writeback has started
  std::size_t writeback_every_;
};

/// Drop the clean cached pages of the file at `p` (if it is a regular file; a symlink is left
/// alone). A save that replaces a file calls it first: the old file stays intact and valid on
/// disk until the rename, but its page cache is handed to the new file instead of the save
/// needing a second copy's worth of memory (which would evict other cached data, and on
/// virtual machines costs far more: fresh guest memory is slow to touch).
inline void drop_cached_pages(const fs::path& p) noexcept {
#ifdef POSIX_FADV_DONTNEED
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
#else
  (void)p;
#endif
}

/// Writes a new file under a temporary name and renames it over `final_path` on commit();
/// destroyed without commit (an exception, an error) it removes the temporary, leaving any
/// previous file at `final_path` untouched.
class AtomicFile {
 public:
  explicit AtomicFile(fs::path final_path, bool durable = true)
      : final_(std::move(final_path)), durable_(durable) {
    for (int attempt = 0;; ++attempt) {
      tmp_ = final_;
      tmp_ += std::string(temp_marker) + random_suffix();
      try {
        file_ = File::create_exclusive(tmp_);
        break;
      } catch (const io_error& e) {
        if (e.code() != EEXIST || attempt > 8) throw;
      }
    }
    // Writeback starts as the bytes are written when the save is durable (fsync would wait
    // for all of it at the end) and when it replaces a file: ext4 (auto_da_alloc) writes the
    // whole new file back inside rename() then, measured 0.63 s of a 1 GiB save's 1.2 s.
    std::error_code ec;
    const bool replaces = fs::is_regular_file(final_, ec);
    if (replaces) drop_cached_pages(final_);
    writer_.emplace(file_, std::size_t{1} << 20, durable_ || replaces ? writeback_bytes : 0);
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (!committed_) {
      writer_.reset();
      file_ = File();
      std::error_code ec;
      fs::remove(tmp_, ec);
    }
  }
  Writer& writer() { return *writer_; }
  const fs::path& temp_path() const { return tmp_; }
  const fs::path& final_path() const { return final_; }

  /// Flush, fsync, rename into place, fsync the directory.
  void commit() {
    writer_->flush();
    if (durable_) file_.fsync();
    file_.close();
    rename_path(tmp_, final_, "cannot rename into place");
    committed_ = true;
    if (durable_) fsync_dir(final_.parent_path());
  }

 private:
  fs::path final_, tmp_;
  bool durable_;
  bool committed_ = false;
  File file_;
  std::optional<FileWriter> writer_;
};

/// drop_cached_pages for a file, or for each file of a (flat) checkpoint directory.
inline void drop_cached_tree(const fs::path& p) noexcept {
  std::error_code ec;
  if (!fs::is_directory(fs::symlink_status(p, ec))) return drop_cached_pages(p);
  for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) drop_cached_pages(it->path());
}

/// A directory checkpoint built under `name.tmp-<random>/` and moved into place on commit().
/// Files are created inside with create(); commit() fsyncs them and the directory, moves any
/// previous directory aside, renames the new one into place and removes the old one. Destroyed
/// without commit, it removes the temporary directory and leaves the previous one untouched.
class AtomicDir {
 public:
  explicit AtomicDir(fs::path final_path, bool durable = true) : final_(std::move(final_path)), durable_(durable) {
    tmp_ = final_;
    tmp_ += std::string(temp_marker) + random_suffix();
    std::error_code ec;
    if (!fs::create_directory(tmp_, ec) || ec) throw io_error("cannot create directory", tmp_.string(), ec ? ec.value() : EEXIST);
    drop_cached_tree(final_);  // the files this one replaces (see drop_cached_pages)
  }
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;
  ~AtomicDir() {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }
  const fs::path& temp_path() const { return tmp_; }
  const fs::path& final_path() const { return final_; }
  /// Write a whole file `name` inside the directory (fsynced at once when durable).
  void write_file(const std::string& name, std::span<const std::byte> data) {
    File f = File::create_exclusive(tmp_ / name);
    FileWriter(f, 0, durable_ ? writeback_bytes : 0).write(data);
    if (durable_) f.fsync();
    f.close();
  }
  /// Put the new directory in place. Replacing one, it swaps the two in one atomic step where
  /// the filesystem can (RENAME_EXCHANGE), so no crash finds neither; elsewhere it moves the
  /// old one aside (moved_aside_marker), renames the new one in and removes the old one — a
  /// crash between those renames leaves only the moved-aside one, which the manager's cleanup
  /// (remove_temporaries) renames back.
  void commit() {
    if (durable_) fsync_dir(tmp_);
    std::error_code ec;
    fs::path old;
    if (!fs::exists(final_, ec)) {
      rename_path(tmp_, final_, "cannot rename into place");
    } else if (exchange_paths(tmp_, final_)) {
      old = tmp_;  // the previous directory, now under the temporary name
    } else {
      old = final_;
      old += std::string(moved_aside_marker) + random_suffix();
      rename_path(final_, old, "cannot move the previous checkpoint aside");
      try {
        rename_path(tmp_, final_, "cannot rename into place");
      } catch (...) {
        std::error_code ignored;
        fs::rename(old, final_, ignored);
        throw;
      }
    }
    committed_ = true;
    try {
      if (durable_) fsync_dir(final_.parent_path());
    } catch (...) {
      if (!old.empty()) fs::remove_all(old, ec);  // the new one is in place: leave no temporary
      throw;
    }
    if (!old.empty()) fs::remove_all(old, ec);
  }

 private:
  fs::path final_, tmp_;
  bool durable_;
  bool committed_ = false;
};

/// Read a whole (small) file into memory.
inline std::vector<std::byte> read_file(const fs::path& p) {
  File f = File::open_read(p);
  std::vector<std::byte> buf(f.size());
  f.pread_all(buf, 0);
  return buf;
}

}  // namespace ckpt::io
