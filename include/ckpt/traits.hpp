// ckpt/traits.hpp — the customization points' primary templates, disabled by default (as
// fmt's formatter<T>): checkpoint_traits<T> makes a type Checkpointable, archive_traits<F>
// makes a format tag F a backend. Also SaveOptions and the capability flags backends declare.
#pragma once

#include <cstdint>  // compression level
#include <string>   // format names

#include "fwd.hpp"  // default template arguments of the traits

namespace ckpt {

/// Specialize for a type you do not own to make it Checkpointable:
///   static StateDict state_dict(const T&);
///   static LoadReport load_state_dict(T&, const StateDict&, const LoadOptions&);
template <class T, class>
struct checkpoint_traits {
  checkpoint_traits() = delete;  // not specialized: see concepts.hpp for the three routes
};

/// Specialize for a format tag to add a backend (see archive/native.hpp for a full example):
///   static constexpr std::string_view name;                 // "native"
///   static constexpr std::array<std::string_view, N> extensions;   // {".ckpt"}
///   static constexpr ArchiveCaps caps;
///   static bool sniff(std::span<const std::byte> head);      // first bytes of the file
///   using output_archive = ...;  // OutputArchive, constructed (io::Writer&, path, SaveOptions)
///                               //   or, with caps.directory, (dir path, SaveOptions)
///   using input_archive = ...;   // InputArchive, constructed (path, LoadOptions)
template <class Format, class>
struct archive_traits {
  archive_traits() = delete;  // not specialized
};

/// What a backend can do; the driver and the CLI read these.
struct ArchiveCaps {
  bool metadata_tree = false;    ///< restores the whole StateDict tree, not only tensors
  bool compression = false;      ///< has a compressing codec
  bool zero_copy_read = false;   ///< LoadOptions::mmap gives tensors viewing the file
  bool streaming_write = false;  ///< writes tensors as they arrive (no whole-file buffer)
  bool checksums = false;        ///< detects changed bytes
  bool directory = false;        ///< the checkpoint is a directory, not one file
};

/// Options for every save.
struct SaveOptions {
  /// Backend name ("native", "json", ...); empty = from the path's extension (native when none).
  std::string format;
  /// fsync the file and its directory before returning (turn off only for scratch files).
  bool fsync = true;
  /// Native format: per-tensor codec, "raw" or "zlib" (byte-shuffled floats + deflate).
  std::string codec = "raw";
  /// zlib level 1..9 when codec == "zlib".
  int compression_level = 6;
};

}  // namespace ckpt
