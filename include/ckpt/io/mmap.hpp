// ckpt/io/mmap.hpp — read-only file mappings shared by the tensors that view them: a Mapping
// lives in a shared_ptr, each mapped Tensor holds a reference, and the mapping is unmapped
// when the last tensor (and the reader) let go. A Mapping can also stand for bytes already in
// memory (io::Source::memory), which it then keeps alive instead of unmapping.
#pragma once

#include <sys/mman.h>  // mmap/munmap/madvise

#include <cstddef>      // std::byte
#include <filesystem>   // paths
#include <memory>       // shared ownership
#include <span>         // byte view
#include <string>       // names

#include "file.hpp"  // File, io_error

namespace ckpt::io {

/// A read-only private mapping of a whole file, or bytes in memory seen as one.
class Mapping {
 public:
  explicit Mapping(const fs::path& p) : Mapping(File::open_read(p)) {}
  /// Map the open file `f`.
  explicit Mapping(const File& f) : path_(f.path()) {
    size_ = f.size();
    if (size_ == 0) return;  // nothing to map; data() is null
    void* a = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, f.fd(), 0);
    if (a == MAP_FAILED) throw io_error("cannot mmap", path_, errno);
    addr_ = static_cast<const std::byte*>(a);
    mapped_ = true;
  }
  /// Bytes in memory, kept alive by `owner` (null: the caller keeps them alive) and named `name`.
  Mapping(std::span<const std::byte> bytes, std::shared_ptr<const void> owner, std::string name)
      : path_(std::move(name)), addr_(bytes.empty() ? nullptr : bytes.data()), size_(bytes.size()), owner_(std::move(owner)) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (mapped_) ::munmap(const_cast<std::byte*>(addr_), size_);
  }
  static std::shared_ptr<const Mapping> open(const fs::path& p) { return std::make_shared<const Mapping>(p); }

  const std::byte* data() const noexcept { return addr_; }
  std::uint64_t size() const noexcept { return size_; }
  std::span<const std::byte> bytes() const noexcept { return {addr_, static_cast<std::size_t>(size_)}; }
  const std::string& path() const noexcept { return path_; }
  /// Hint the kernel that a range will be read soon (sequential read-ahead).
  void will_need(std::uint64_t off, std::uint64_t len) const {
    if (mapped_ && len) ::madvise(const_cast<std::byte*>(addr_) + (off & ~std::uint64_t{4095}), static_cast<std::size_t>(len + (off & 4095)), MADV_WILLNEED);
  }

 private:
  std::string path_;
  const std::byte* addr_ = nullptr;
  std::uint64_t size_ = 0;
  bool mapped_ = false;                 // addr_ is ours to munmap
  std::shared_ptr<const void> owner_;   // keeps bytes in memory alive
};

}  // namespace ckpt::io
