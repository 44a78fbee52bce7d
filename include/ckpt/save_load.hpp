// ckpt/save_load.hpp — the public API: ckpt::save, ckpt::load, ckpt::load_into, ckpt::verify,
// and the two drivers that connect a StateDict to any archive (write_state_dict walks the tree
// into an OutputArchive; read_state_dict rebuilds it from an InputArchive).
#pragma once

#include <filesystem>  // paths
#include <new>         // std::bad_alloc
#include <string>      // messages

#include "archive/detect.hpp"      // built-in formats, sniffing
#include "concepts.hpp"            // Checkpointable, archive concepts
#include "detail/limits.hpp"       // out_of_memory
#include "detail/skeleton.hpp"     // build_from_skeleton
#include "io/source.hpp"           // Source: a file or bytes in memory
#include "state_dict.hpp"          // StateDict

namespace ckpt {

/// Stream `sd` into `ar` (depth first, insertion order) and commit.
template <OutputArchive A>
void write_state_dict(A& ar, const StateDict& sd) {
  auto walk = [&](auto&& self, const StateDict& n, const KeyPath& p) -> void {
    switch (n.kind()) {
      case StateDict::Kind::tensor: ar.write_tensor(p, n.tensor().view()); break;
      case StateDict::Kind::value: ar.write_value(p, n.value()); break;
      case StateDict::Kind::dict:
        if constexpr (requires { ar.begin_group(p, n.container()); }) ar.begin_group(p, n.container());
        for (const auto& it : n.items()) self(self, it.value, p / it.key);
        if constexpr (requires { ar.end_group(p); }) ar.end_group(p);
        break;
    }
  };
  walk(walk, sd, KeyPath{});
  ar.commit();
}

/// Rebuild the StateDict an input archive holds. Without a skeleton (a flat file), every
/// entry becomes a leaf at its key path.
template <InputArchive A>
StateDict read_state_dict(A& ar, const std::string& path = {}) {
  const auto& entries = ar.entries();
  Value sk = ar.skeleton();
  if (!sk.is_null())
    return detail::build_from_skeleton(sk, [&](std::size_t i, const KeyPath&) { return ar.read_tensor(i); }, entries.size(), path);
  StateDict root;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (root.contains(entries[i].path)) throw format_error("duplicate entry", path, format_error::no_offset, entries[i].path.str());
    try {
      root[entries[i].path] = ar.read_tensor(i);
    } catch (const key_error&) {
      throw format_error("entry nested under another entry", path, format_error::no_offset, entries[i].path.str());
    }
  }
  return root;
}

/// Save with an explicit format tag (built-in or user-defined).
template <ArchiveFormat F>
void save_as(const std::filesystem::path& path, const StateDict& sd, const SaveOptions& opts = {}) {
  typename archive_traits<F>::output_archive ar(path, opts);
  write_state_dict(ar, sd);
}
template <ArchiveFormat F, Checkpointable T>
  requires(!std::is_same_v<T, StateDict>)
void save_as(const std::filesystem::path& path, const T& x, const SaveOptions& opts = {}) {
  save_as<F>(path, to_state_dict(x), opts);
}

/// Load with an explicit format tag. Running out of memory is an io_error (ENOMEM) naming the
/// file, never a std::bad_alloc (each built-in reader says which entry; this catches the rest).
template <ArchiveFormat F>
StateDict load_as(const std::filesystem::path& path, const LoadOptions& opts = {}) {
  try {
    typename archive_traits<F>::input_archive ar(path, opts);
    return read_state_dict(ar, path.string());
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(path.string());
  }
}
/// Load bytes in memory (or a file) with an explicit format tag, for formats whose reader takes
/// an io::Source (every built-in single-file format does).
template <ArchiveFormat F>
  requires std::constructible_from<typename archive_traits<F>::input_archive, io::Source, const LoadOptions&>
StateDict load_as(const io::Source& src, const LoadOptions& opts = {}) {
  try {
    typename archive_traits<F>::input_archive ar(src, opts);
    return read_state_dict(ar, src.path());
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(src.path());
  }
}

/// Save a StateDict atomically: a new file appears under `path` only once it is complete and
/// durable; on any error the previous file is untouched. Format: opts.format, else the
/// extension (.ckpt native, .json JSON, ...), else native.
inline void save(const std::filesystem::path& path, const StateDict& sd, const SaveOptions& opts = {}) {
  visit_format(format_for_save(path, opts), [&]<class F>(F) { save_as<F>(path, sd, opts); });
}
/// Save any Checkpointable (its state_dict()).
template <Checkpointable T>
  requires(!std::is_same_v<T, StateDict>)
void save(const std::filesystem::path& path, const T& x, const SaveOptions& opts = {}) {
  save(path, to_state_dict(x), opts);
}

/// Load a checkpoint of any built-in format (sniffed from its bytes) as a StateDict.
inline StateDict load(const std::filesystem::path& path, const LoadOptions& opts = {}) {
  return visit_format(sniff_format(path), [&]<class F>(F) { return load_as<F>(path, opts); });
}
/// Load a checkpoint held in memory (io::Source::memory / borrowed), of any built-in single-file
/// format, sniffed from its bytes: ckpt::load(io::Source::borrowed(bytes, "upload.pt")).
inline StateDict load(const io::Source& src, const LoadOptions& opts = {}) {
  return visit_format(sniff_format(src), [&]<class F>(F) -> StateDict {
    if constexpr (std::constructible_from<typename archive_traits<F>::input_archive, io::Source, const LoadOptions&>) return load_as<F>(src, opts);
    else throw unsupported_error("a " + std::string(archive_traits<F>::name) + " checkpoint is a directory, not bytes", src.path());
  });
}

/// Load a checkpoint into `obj`. Strict (default): missing or unexpected keys raise key_error
/// listing all of them; otherwise they are returned in the report. A dtype/shape mismatch raises
/// mismatch_error with the key path, expected and got (or is reported with skip_mismatched).
template <Checkpointable T>
LoadReport load_into(const std::filesystem::path& path, T& obj, const LoadOptions& opts = {}) {
  StateDict sd = load(path, opts);
  LoadReport r;
  try {
    r = load_state_dict(obj, sd, opts);
  } catch (const mismatch_error& e) {
    throw mismatch_error(e.reason(), e.key(), e.expected(), e.got(), path.string());
  }
  if (opts.strict && (!r.missing.empty() || !r.unexpected.empty()))
    throw key_error("state dict does not match the object (" + r.summary() + ")", path.string());
  return r;
}

/// Check a checkpoint's structure and every checksum; throws corrupt_error naming the first
/// bad tensor, format_error for structural damage. Reads the file once, in bounded memory.
inline void verify(const std::filesystem::path& path) try {
  visit_format(sniff_format(path), [&]<class F>(F) {
    LoadOptions o;
    o.verify = true;
    typename archive_traits<F>::input_archive ar(path, o);
    for (std::size_t i = 0; i < ar.entries().size(); ++i) {
      if constexpr (requires { ar.verify_entry(i); }) ar.verify_entry(i);
      else (void)ar.read_tensor(i);
    }
    Value sk = ar.skeleton();
    if (!sk.is_null())  // structure: the tree must be valid; tensors are not read again
      detail::build_from_skeleton(sk, [](std::size_t, const KeyPath&) { return Tensor{}; }, ar.entries().size(), path.string());
  });
} catch (const std::bad_alloc&) {
  throw detail::out_of_memory(path.string());
}

}  // namespace ckpt
