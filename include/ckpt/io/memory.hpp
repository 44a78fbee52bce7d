// ckpt/io/memory.hpp — in-memory byte sinks for tests and for staging (async saves):
// a Writer that appends to a std::vector<std::byte>.
#pragma once

#include <cstddef>  // std::byte
#include <string>   // name
#include <vector>   // storage

#include "file.hpp"  // Writer

namespace ckpt::io {

/// A Writer into memory.
class MemoryWriter final : public Writer {
 public:
  explicit MemoryWriter(std::string name = "<memory>") : name_(std::move(name)) {}
  void write(std::span<const std::byte> data) override { buf_.insert(buf_.end(), data.begin(), data.end()); }
  std::uint64_t position() const override { return buf_.size(); }
  const std::string& path() const override { return name_; }
  const std::vector<std::byte>& bytes() const noexcept { return buf_; }
  std::vector<std::byte> take() { return std::move(buf_); }

 private:
  std::string name_;
  std::vector<std::byte> buf_;
};

}  // namespace ckpt::io
