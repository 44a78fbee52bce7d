// ckpt/dist/metadata.hpp — the global metadata of a distributed checkpoint (`metadata.json`,
// specified in docs/DISTRIBUTED.md): every tensor's key, dtype, global shape and chunks (box,
// file, byte offset, CRC-32 per block), the data files with their sizes, and the StateDict
// skeleton. Written by the coordinator of a save; read by every load as hostile input — each
// member checked, chunks that overlap, leave gaps, leave the global shape or point past a file's
// end are format_errors naming the key, never an out-of-bounds read later.
#pragma once

#include <cstddef>        // std::size_t
#include <cstdint>        // sizes, CRCs
#include <cstdio>         // std::snprintf for file names
#include <string>         // keys
#include <string_view>    // names
#include <unordered_set>  // duplicate keys
#include <vector>         // tensors, chunks

#include "../detail/json_fields.hpp"  // number_as
#include "../detail/json_parse.hpp"   // parse_json_checked, JsonShape
#include "../detail/skeleton.hpp"     // skeleton_shape
#include "../dtype.hpp"               // DType names
#include "../error.hpp"               // format_error
#include "../tensor.hpp"              // Shape, checked_nbytes
#include "box.hpp"                    // Box, tiling_problem

namespace ckpt::dist {

/// Name of the metadata file inside a distributed checkpoint directory.
inline constexpr std::string_view metadata_name = "metadata.json";
/// The "format" member of the metadata.
inline constexpr std::string_view format_tag = "ckpt-distributed";
inline constexpr std::int64_t format_version = 1;
/// Chunk bytes start at multiples of this in a data file (so a mapped chunk is aligned).
inline constexpr std::uint64_t data_alignment = 64;

/// "rank-00003.bin": the data file rank 3 writes.
inline std::string rank_file_name(int rank) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rank-%05d.bin", rank);
  return buf;
}

/// One stored chunk: its box in the global tensor, and where its bytes are.
struct SavedChunk {
  Box box;
  std::size_t file = 0;                ///< index into Metadata::files
  std::uint64_t offset = 0;            ///< byte offset in that file
  std::uint64_t nbytes = 0;            ///< numel(box) × element size
  std::vector<std::uint32_t> crc32;    ///< CRC-32 of each block of crc_block_bytes
};
struct SavedTensor {
  std::string key;  ///< escaped dotted key path
  DType dtype = DType::f32;
  Shape shape;
  std::vector<SavedChunk> chunks;
};
struct FileInfo {
  std::string name;
  std::uint64_t size = 0;
};
struct Metadata {
  int world_size = 1;
  std::uint64_t crc_block_bytes = std::uint64_t{1} << 20;
  std::vector<FileInfo> files;
  std::vector<SavedTensor> tensors;
  Value tree;  ///< skeleton; {"tensor": i} is tensors[i]
};

/// Number of CRC blocks of a chunk of `nbytes` bytes.
inline std::uint64_t block_count(std::uint64_t nbytes, std::uint64_t block) { return nbytes / block + (nbytes % block != 0); }

/// The metadata as JSON (what metadata.json holds).
inline Value to_json(const Metadata& m) {
  Value files = Value::array(), tensors = Value::array();
  for (const auto& f : m.files) files.push_back({{"name", f.name}, {"size", f.size}});
  for (const auto& t : m.tensors) {
    Value chunks = Value::array();
    for (const auto& c : t.chunks)
      chunks.push_back({{"offsets", c.box.offsets}, {"shape", c.box.shape}, {"file", c.file}, {"offset", c.offset}, {"crc32", c.crc32}});
    tensors.push_back({{"key", t.key}, {"dtype", std::string(name(t.dtype))}, {"shape", t.shape}, {"chunks", std::move(chunks)}});
  }
  return {{"format", std::string(format_tag)}, {"version", format_version}, {"world_size", m.world_size},
          {"crc_block_bytes", m.crc_block_bytes}, {"files", std::move(files)}, {"tensors", std::move(tensors)}, {"tree", m.tree}};
}

/// The members a metadata document may have, for strict reading.
inline const detail::JsonShape& metadata_shape() {
  using M = detail::JsonShape::Member;
  struct Shapes {
    detail::JsonShape top, files, file, tensors, tensor, chunks, chunk;
    const M top_m[7] = {{"format", nullptr}, {"version", nullptr}, {"world_size", nullptr}, {"crc_block_bytes", nullptr},
                        {"files", &files}, {"tensors", &tensors}, {"tree", &detail::skeleton_shape()}};
    const M file_m[2] = {{"name", nullptr}, {"size", nullptr}};
    const M tensor_m[4] = {{"key", nullptr}, {"dtype", nullptr}, {"shape", nullptr}, {"chunks", &chunks}};
    const M chunk_m[5] = {{"offsets", nullptr}, {"shape", nullptr}, {"file", nullptr}, {"offset", nullptr}, {"crc32", nullptr}};
    Shapes() {
      top.members = top_m;
      files.items = &file;
      file.members = file_m;
      tensors.items = &tensor;
      tensor.members = tensor_m;
      chunks.items = &chunk;
      chunk.members = chunk_m;
    }
  };
  static const Shapes s;
  return s.top;
}

/// Parse and check metadata text (see the top of the file). `path` names the file in errors.
inline Metadata parse_metadata(std::string_view text, const std::string& path, bool strict = true) {
  const Value doc = detail::parse_json_checked(text, "invalid distributed checkpoint metadata", path, 0, {.reject_duplicates = true, .shape = &metadata_shape(), .strict = strict});
  auto bad = [&](const std::string& what, const std::string& key = {}) { return format_error(what, path, format_error::no_offset, key); };
  auto member = [&](const Value& obj, const char* k, const std::string& key = {}) -> const Value& {
    if (!obj.is_object() || !obj.contains(k)) throw bad(std::string("missing \"") + k + "\"", key);
    return obj[k];
  };
  auto integer = [&]<class T>(const Value& v, const char* what, const std::string& key, T lo) -> T {
    const auto n = v.is_boolean() ? std::nullopt : detail::number_as<T>(v);
    if (!n || *n < lo) throw bad(std::string("invalid ") + what + " " + v.dump(), key);
    return *n;
  };
  auto shape = [&](const Value& v, const char* what, const std::string& key) {
    if (!v.is_array() || v.size() > 64) throw bad(std::string("invalid ") + what + " (an array of at most 64 integers)", key);
    Shape s;
    for (const auto& d : v) s.push_back(integer(d, what, key, std::int64_t{0}));
    return s;
  };
  if (!doc.is_object() || detail::string_member(doc, "format") != format_tag) throw bad("not a distributed checkpoint (\"format\" is not \"ckpt-distributed\")");
  if (!detail::integer_member_is(doc, "version", format_version)) throw bad("unsupported metadata version " + member(doc, "version").dump());
  Metadata m;
  m.world_size = integer(member(doc, "world_size"), "world_size", {}, 1);
  m.crc_block_bytes = integer(member(doc, "crc_block_bytes"), "crc_block_bytes", {}, std::uint64_t{1});
  const Value& files = member(doc, "files");
  if (!files.is_array()) throw bad("\"files\" is not an array");
  for (const auto& f : files) {
    FileInfo fi{detail::string_member(f, "name"), integer(member(f, "size"), "file size", {}, std::uint64_t{0})};
    if (fi.name.empty() || fi.name == "." || fi.name == ".." || fi.name.find('/') != std::string::npos || fi.name.find('\0') != std::string::npos)
      throw bad("a data file name must be a plain file name, got \"" + fi.name + "\"");
    m.files.push_back(std::move(fi));
  }
  const Value& tensors = member(doc, "tensors");
  if (!tensors.is_array()) throw bad("\"tensors\" is not an array");
  std::unordered_set<std::string> keys;
  for (const auto& t : tensors) {
    SavedTensor st;
    st.key = detail::string_member(t, "key");
    if (!keys.insert(st.key).second) throw bad("duplicate tensor key", st.key);
    const auto dt = dtype_from_name(detail::string_member(t, "dtype"));
    if (!dt) throw bad("invalid dtype " + member(t, "dtype", st.key).dump(), st.key);
    st.dtype = *dt;
    st.shape = shape(member(t, "shape", st.key), "shape", st.key);
    if (!checked_nbytes(st.dtype, st.shape)) throw bad("shape too large " + shape_string(st.shape), st.key);
    const Value& chunks = member(t, "chunks", st.key);
    if (!chunks.is_array()) throw bad("\"chunks\" is not an array", st.key);
    std::vector<Box> boxes;
    for (const auto& c : chunks) {
      SavedChunk sc;
      sc.box = {shape(member(c, "offsets", st.key), "chunk offsets", st.key), shape(member(c, "shape", st.key), "chunk shape", st.key)};
      if (auto why = box_outside(sc.box, st.shape)) throw bad(*why, st.key);
      sc.nbytes = *checked_nbytes(st.dtype, sc.box.shape);  // inside a valid global shape
      sc.file = integer(member(c, "file", st.key), "chunk file index", st.key, std::size_t{0});
      if (sc.file >= m.files.size()) throw bad("chunk file index " + std::to_string(sc.file) + " past the " + std::to_string(m.files.size()) + " files", st.key);
      sc.offset = integer(member(c, "offset", st.key), "chunk byte offset", st.key, std::uint64_t{0});
      const auto fsize = m.files[sc.file].size;
      if (sc.offset > fsize || sc.nbytes > fsize - sc.offset)
        throw bad("chunk " + box_string(sc.box) + " at bytes " + std::to_string(sc.offset) + "+" + std::to_string(sc.nbytes) + " is past the end of '" + m.files[sc.file].name + "' (" + std::to_string(fsize) + " bytes)", st.key);
      const Value& crcs = member(c, "crc32", st.key);
      if (!crcs.is_array() || crcs.size() != block_count(sc.nbytes, m.crc_block_bytes))
        throw bad("chunk " + box_string(sc.box) + " needs " + std::to_string(block_count(sc.nbytes, m.crc_block_bytes)) + " CRC-32 values", st.key);
      for (const auto& v : crcs) sc.crc32.push_back(integer(v, "CRC-32", st.key, std::uint32_t{0}));
      boxes.push_back(sc.box);
      st.chunks.push_back(std::move(sc));
    }
    if (auto why = tiling_problem(st.shape, boxes)) throw bad("chunks do not tile the tensor: " + *why, st.key);
    m.tensors.push_back(std::move(st));
  }
  m.tree = member(doc, "tree");
  return m;
}

}  // namespace ckpt::dist
