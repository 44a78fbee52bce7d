// ckpt/detail/codec.hpp — per-tensor codecs of the native format: "raw" (bytes as they are)
// and "zlib" (byte-shuffle by element size, then deflate). Shuffling puts the exponent bytes
// of floats next to each other, which is what makes float weights compress at all.
#pragma once

#include <zlib.h>  // compress2, uncompress

#include <cstddef>  // std::byte
#include <span>     // buffers
#include <string>   // names
#include <vector>   // outputs

#include "../concepts.hpp"  // EntryInfo
#include "../error.hpp"     // format_error, unsupported_error
#include "../tensor.hpp"    // TensorView
#include "limits.hpp"          // new_buffer

namespace ckpt::detail {

enum class Codec { raw, zlib };

inline Codec codec_from_name(std::string_view s, const std::string& path) {
  if (s == "raw") return Codec::raw;
  if (s == "zlib") return Codec::zlib;
  throw unsupported_error("unknown codec '" + std::string(s) + "' (known: raw zlib)", path);
}

/// out[b * n + i] = in[i * es + b]
inline void shuffle_bytes(std::span<const std::byte> in, std::span<std::byte> out, std::size_t es) {
  const std::size_t n = in.size() / es;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t b = 0; b < es; ++b) out[b * n + i] = in[i * es + b];
}
inline void unshuffle_bytes(std::span<const std::byte> in, std::span<std::byte> out, std::size_t es) {
  const std::size_t n = in.size() / es;
  for (std::size_t b = 0; b < es; ++b)
    for (std::size_t i = 0; i < n; ++i) out[i * es + b] = in[b * n + i];
}

inline std::vector<std::byte> zlib_encode(const TensorView& t, int level) {
  const std::size_t es = element_size(t.dtype);
  std::vector<std::byte> shuffled;
  std::span<const std::byte> src = t.bytes();
  if (es > 1) {
    shuffled.resize(t.nbytes);
    shuffle_bytes(t.bytes(), shuffled, es);
    src = shuffled;
  }
  uLongf len = ::compressBound(static_cast<uLong>(src.size()));
  std::vector<std::byte> out(len);
  const int rc = ::compress2(reinterpret_cast<Bytef*>(out.data()), &len, reinterpret_cast<const Bytef*>(src.data()),
                             static_cast<uLong>(src.size()), level);
  if (rc != Z_OK) throw unsupported_error("zlib compress2 failed with code " + std::to_string(rc));
  out.resize(len);
  return out;
}

inline void zlib_decode(std::span<const std::byte> packed, const EntryInfo& e, std::span<std::byte> dst, const std::string& path) {
  const std::size_t es = element_size(e.dtype);
  std::vector<std::byte> shuffled;
  std::span<std::byte> target = dst;
  if (es > 1) {
    shuffled = new_buffer(dst.size(), path, e.path.str());
    target = shuffled;
  }
  uLongf len = static_cast<uLongf>(target.size());
  const int rc = ::uncompress(reinterpret_cast<Bytef*>(target.data()), &len, reinterpret_cast<const Bytef*>(packed.data()),
                              static_cast<uLong>(packed.size()));
  if (rc != Z_OK || len != target.size())
    throw format_error("cannot inflate tensor data", path, format_error::no_offset, e.path.str(), std::to_string(target.size()) + " bytes",
                       rc == Z_OK ? std::to_string(len) + " bytes" : "zlib error " + std::to_string(rc));
  if (es > 1) unshuffle_bytes(shuffled, dst, es);
}

}  // namespace ckpt::detail
