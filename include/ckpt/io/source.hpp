// ckpt/io/source.hpp — where a reader's bytes come from: a file (read with pread, mapped for
// zero-copy loads) or bytes already in memory (a buffer received over the network, a test, a
// fuzzer). Every built-in reader takes a Source, so any format can be read from memory without
// a temporary file; under LoadOptions::mmap, tensors read from memory view those bytes.
#pragma once

#include <cstddef>     // std::byte
#include <cstdint>     // offsets
#include <cstring>     // std::memcpy
#include <filesystem>  // paths
#include <memory>      // shared ownership
#include <new>         // aligned allocation
#include <span>        // byte spans
#include <string>      // names
#include <vector>      // owned bytes

#include "file.hpp"  // File, io_error
#include "mmap.hpp"  // Mapping

namespace ckpt::io {

/// A file or bytes in memory, read by offset. Copies share the open file or the bytes.
class Source {
 public:
  /// The file at `path`, opened now: io_error when it cannot be (a directory is EISDIR).
  static Source file(const fs::path& path) {
    Source s;
    s.file_ = std::make_shared<const File>(File::open_read(path));
    s.name_ = path.string();
    s.size_ = s.file_->size();
    return s;
  }
  /// Bytes in memory that the Source shares: they live as long as it, the reader holding it and
  /// any tensor that views them. `name` stands for the file in messages.
  static Source memory(std::shared_ptr<const std::vector<std::byte>> bytes, std::string name = "<memory>") {
    Source s = borrowed(*bytes, std::move(name));
    s.owner_ = std::move(bytes);
    return s;
  }
  /// Bytes in memory that the caller keeps alive and unchanged while the reader, and any tensor
  /// it returns under LoadOptions::mmap, exist. `name` stands for the file in messages.
  static Source borrowed(std::span<const std::byte> bytes, std::string name = "<memory>") {
    Source s;
    s.bytes_ = bytes;
    s.name_ = std::move(name);
    s.size_ = bytes.size();
    return s;
  }

  /// The file's path, or the name given to bytes in memory.
  const std::string& path() const noexcept { return name_; }
  std::uint64_t size() const noexcept { return size_; }
  bool in_memory() const noexcept { return !file_; }

  /// Read exactly dst.size() bytes at `offset`; io_error (as File::pread_all) past the end.
  void pread_all(std::span<std::byte> dst, std::uint64_t offset) const {
    if (file_) return file_->pread_all(dst, offset);
    if (offset > size_ || dst.size() > size_ - offset) {
      const auto have = offset > size_ ? 0 : size_ - offset;
      throw io_error("unexpected end of file: " + std::to_string(dst.size() - have) + " bytes missing at offset " + std::to_string(offset + have), name_);
    }
    if (!dst.empty()) std::memcpy(dst.data(), bytes_.data() + offset, dst.size());
  }
  /// Alignment of the bytes map() gives: what file offsets promise tensors (a mapping starts on
  /// a page).
  static constexpr std::size_t map_alignment = 64;

  /// The whole source as a Mapping that tensors can share: the file mapped, or the bytes in
  /// memory — copied once into an aligned buffer when they do not start at a multiple of
  /// map_alignment, so that a tensor at an aligned offset is aligned in memory too.
  std::shared_ptr<const Mapping> map() const {
    if (file_) return std::make_shared<const Mapping>(*file_);
    if (reinterpret_cast<std::uintptr_t>(bytes_.data()) % map_alignment == 0 || bytes_.empty())
      return std::make_shared<const Mapping>(bytes_, owner_, name_);
    std::shared_ptr<std::byte> copy(static_cast<std::byte*>(::operator new(bytes_.size(), std::align_val_t{map_alignment})),
                                    [](std::byte* p) { ::operator delete(p, std::align_val_t{map_alignment}); });
    std::memcpy(copy.get(), bytes_.data(), bytes_.size());
    return std::make_shared<const Mapping>(std::span<const std::byte>(copy.get(), bytes_.size()), copy, name_);
  }

 private:
  Source() = default;
  std::string name_;
  std::uint64_t size_ = 0;
  std::shared_ptr<const File> file_;   // a file, or
  std::span<const std::byte> bytes_;   // bytes in memory,
  std::shared_ptr<const void> owner_;  // owned when memory() made them
};

}  // namespace ckpt::io
