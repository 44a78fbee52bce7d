// ckpt/archive/detect.hpp — the registry of built-in file formats: pick one by name or by a
// path's extension on save, sniff one from a file's first bytes on load. Unknown files get a
// format_error listing the formats we know.
#pragma once

#include <algorithm>   // std::min
#include <filesystem>  // paths
#include <optional>    // lookups
#include <string>      // names
#include <tuple>       // format list

#include "../concepts.hpp"     // ArchiveFormat
#include "../io/source.hpp"    // Source
#include "json.hpp"         // json_format
#include "native.hpp"       // native_format
#include "npy.hpp"          // npy_format, npz_format
#include "safetensors.hpp"  // safetensors_format, safetensors_sharded_format
#include "torch.hpp"        // torch_format (.pt)

namespace ckpt {

/// The file formats ckpt::save / ckpt::load dispatch over, in sniffing order.
using builtin_formats = std::tuple<native_format, json_format, npy_format, npz_format, safetensors_format,
                                   safetensors_sharded_format, torch_format>;

namespace detail {
template <class F>
void for_each_format(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f(std::tuple_element_t<I, builtin_formats>{}), ...);
  }(std::make_index_sequence<std::tuple_size_v<builtin_formats>>{});
}
inline std::string known_formats() {
  std::string s;
  for_each_format([&]<class F>(F) {
    if (!s.empty()) s += ", ";
    s += archive_traits<F>::name;
    for (auto e : archive_traits<F>::extensions) s += " " + std::string(e);
  });
  return s;
}
}  // namespace detail

/// Name of the format for saving to `path`: opts.format if set, else the extension's, else native.
inline std::string format_for_save(const std::filesystem::path& path, const SaveOptions& opts = {}) {
  if (!opts.format.empty()) return opts.format;
  std::string found;
  const auto ext = path.extension().string();
  detail::for_each_format([&]<class F>(F) {
    for (auto e : archive_traits<F>::extensions)
      if (found.empty() && e == ext) found = archive_traits<F>::name;
  });
  return found.empty() ? std::string(archive_traits<native_format>::name) : found;
}

/// Name of the format of the bytes in `src`, sniffed from the first ones; format_error if none.
inline std::string sniff_format(const io::Source& src) {
  std::array<std::byte, 256> head{};
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(head.size(), src.size()));
  src.pread_all({head.data(), n}, 0);
  std::string found;
  detail::for_each_format([&]<class F>(F) {
    if (found.empty() && archive_traits<F>::sniff({head.data(), n})) found = archive_traits<F>::name;
  });
  if (found.empty()) throw format_error("unknown file format (known: " + detail::known_formats() + ")", src.path(), 0);
  return found;
}
/// Name of the format of the file at `path`, sniffed from its first bytes; format_error if none.
inline std::string sniff_format(const std::filesystem::path& path) { return sniff_format(io::Source::file(path)); }

/// Call f(tag) with the built-in format tag called `name`; format_error when there is none.
template <class F>
auto visit_format(std::string_view name, F&& f) {
  bool done = false;
  std::optional<std::conditional_t<std::is_void_v<decltype(f(native_format{}))>, int, decltype(f(native_format{}))>> result;
  detail::for_each_format([&]<class T>(T tag) {
    if (done || archive_traits<T>::name != name) return;
    done = true;
    if constexpr (std::is_void_v<decltype(f(tag))>) f(tag);
    else result.emplace(f(tag));
  });
  if (!done) throw unsupported_error("unknown format '" + std::string(name) + "' (known: " + detail::known_formats() + ")");
  if constexpr (!std::is_void_v<decltype(f(native_format{}))>) return std::move(*result);
}

}  // namespace ckpt
