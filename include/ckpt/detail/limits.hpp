// ckpt/detail/limits.hpp — what a file can make a reader allocate. Every size a reader allocates
// is checked first against what the file can justify: its own bytes, or for compressed data what
// deflate can expand them to (at most 1032:1, a 258-byte match coded in 2 bits). When memory runs
// out anyway — a real file larger than the memory there is, or a limit such as `ulimit -v` — the
// std::bad_alloc becomes an io_error (ENOMEM) naming the file and the entry, so it never escapes
// a reader.
#pragma once

#include <cerrno>   // ENOMEM
#include <cstddef>  // std::byte
#include <cstdint>  // sizes
#include <limits>   // saturation
#include <new>      // std::bad_alloc
#include <string>   // messages
#include <vector>   // buffers

#include "../error.hpp"   // io_error
#include "../tensor.hpp"  // Tensor

namespace ckpt::detail {

/// Deflate cannot expand data more than 1032:1.
inline constexpr std::uint64_t max_deflate_ratio = 1032;
/// Bytes a stream may decode to beyond the ratio (headers and the block overhead of tiny streams).
inline constexpr std::uint64_t deflate_slack_bytes = 64;

/// Could `stored` bytes of deflate (or zlib) data decode to `decoded` bytes?
constexpr bool inflatable(std::uint64_t stored, std::uint64_t decoded) {
  constexpr auto max = std::numeric_limits<std::uint64_t>::max();
  return stored > max - deflate_slack_bytes || decoded / max_deflate_ratio <= stored + deflate_slack_bytes;
}
/// The most `stored` bytes of deflate data may decode to under inflatable() (saturating).
constexpr std::uint64_t max_inflated_bytes(std::uint64_t stored) {
  constexpr auto max = std::numeric_limits<std::uint64_t>::max();
  if (stored > max / max_deflate_ratio - deflate_slack_bytes) return max;
  return (stored + deflate_slack_bytes) * max_deflate_ratio + (max_deflate_ratio - 1);
}

/// The error for an allocation of `bytes` that failed while reading `file` (at entry `key`).
inline io_error out_of_memory(const std::string& file, std::uint64_t bytes = 0, const std::string& key = {}) {
  std::string what = bytes ? "cannot allocate " + std::to_string(bytes) + " bytes" : std::string("out of memory");
  if (!key.empty()) what += " for '" + key + "'";
  return io_error(what + " while reading", file, ENOMEM);
}

/// An uninitialized tensor for entry `key` of `file`; out_of_memory() instead of std::bad_alloc.
inline Tensor new_tensor(DType dtype, const Shape& shape, const std::string& file, const std::string& key) {
  try {
    return Tensor::empty(dtype, shape);
  } catch (const std::bad_alloc&) {
    throw out_of_memory(file, checked_nbytes(dtype, shape).value_or(0), key);
  }
}
/// A zeroed buffer of `n` bytes for entry `key` of `file`; out_of_memory() instead of std::bad_alloc.
inline std::vector<std::byte> new_buffer(std::uint64_t n, const std::string& file, const std::string& key = {}) {
  try {
    if (n > std::numeric_limits<std::size_t>::max()) throw std::bad_alloc();
    return std::vector<std::byte>(static_cast<std::size_t>(n));
  } catch (const std::bad_alloc&) {
    throw out_of_memory(file, n, key);
  }
}

}  // namespace ckpt::detail
