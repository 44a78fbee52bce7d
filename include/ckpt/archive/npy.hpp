// ckpt/archive/npy.hpp — the NumPy backends. `.npy` holds one array: a StateDict whose root is
// a tensor (ckpt::save("w.npy", tensor); ckpt::load("w.npy").tensor()). `.npz` is a zip of
// `.npy` members, one per tensor, named by the tensor's key path joined with '.' plus ".npy",
// so `np.load("x.npz")["model.weight"]` works; stored (SaveOptions::codec "raw", members
// 64-byte aligned so mapped tensors are aligned) or deflated (codec "zlib", like
// np.savez_compressed). The exact tree (nesting, dotted keys, containers, value leaves) is kept
// in one more member, `__ckpt_tree__.npy`: a uint8 array holding the UTF-8 JSON
//   {"format": "ckpt-npz", "version": 1, "tree": <skeleton whose tensor leaves name members>}
// An .npz without it (written by NumPy) loads flat: each member becomes a leaf whose single
// key is the member name without ".npy". bf16/float8 use detail/npy.hpp's raw-bits convention.
#pragma once

#include <array>        // extensions
#include <cstring>      // magic compare
#include <filesystem>   // paths
#include <memory>       // shared mapping
#include <span>         // bytes
#include <string>       // names
#include <unordered_map>  // member name -> entry
#include <vector>       // entries

#include "../concepts.hpp"          // archive concepts, EntryInfo
#include "../detail/codec.hpp"      // codec names (raw / zlib)
#include "../detail/flat_names.hpp" // tensor names in the stored tree
#include "../detail/limits.hpp"     // allocations sized by the file
#include "../detail/npy.hpp"        // .npy headers
#include "../detail/skeleton.hpp"   // SkeletonBuilder
#include "../detail/zip.hpp"        // .npz container
#include "../io/file.hpp"           // AtomicFile
#include "../io/source.hpp"         // Source: the file, or bytes in memory

namespace ckpt {

/// Format tag of the single-array NumPy backend (.npy).
struct npy_format {};
/// Format tag of the NumPy archive backend (.npz).
struct npz_format {};

namespace npy {

/// Write `t` as a complete .npy stream (header padded so the data is 64-byte aligned).
/// version 0 picks 1.0 (2.0 for huge headers); 1/2/3 force that format version.
inline void write(io::Writer& out, const TensorView& t, int version = 0) {
  out.write(detail::npy::encode_header(t.dtype, t.shape, version));
  out.write(t.bytes());
}

/// True when data at `offset` of a mapping is aligned for typed access to dtype t.
inline bool aligned_for(DType t, std::uint64_t offset) { return offset % detail::element_alignment(t) == 0; }

/// Writes a .npy file through an AtomicFile. It takes exactly one tensor, at the root.
class OutputArchive {
 public:
  OutputArchive(const std::filesystem::path& path, const SaveOptions& opts = {}) : file_(path, opts.fsync), path_(path.string()) {}
  void begin_group(const KeyPath& p, Container) { refuse(p); }
  void end_group(const KeyPath&) {}
  void write_value(const KeyPath& p, const Value&) { refuse(p); }
  void write_tensor(const KeyPath& p, const TensorView& t) {
    if (!p.empty() || done_) refuse(p);
    write(file_.writer(), t);
    done_ = true;
  }
  void commit() {
    if (!done_) refuse({});
    file_.commit();
  }

 private:
  [[noreturn]] void refuse(const KeyPath& p) const {
    throw unsupported_error("a .npy file holds exactly one array: save a tensor (a StateDict whose root is a tensor), or use .npz for a tree", path_, p.str());
  }
  io::AtomicFile file_;
  std::string path_;
  bool done_ = false;
};

/// Reads a .npy file (or one in memory): one entry at the root. Big-endian data is swapped and
/// Fortran-order data reordered on read; little-endian C-order data is mapped without a copy
/// under LoadOptions::mmap.
class InputArchive {
 public:
  InputArchive(const std::filesystem::path& path, const LoadOptions& opts = {}) : InputArchive(io::Source::file(path), opts) {}
  explicit InputArchive(const io::Source& src, const LoadOptions& opts = {}) try : path_(src.path()), file_(src) {
    const auto size = file_.size();
    h_ = detail::npy::parse_header([&](std::span<std::byte> d, std::uint64_t off) { file_.pread_all(d, off); }, size, path_);
    entries_.push_back(EntryInfo{KeyPath{}, h_.dtype, h_.shape, h_.nbytes, h_.nbytes, "raw"});
    if (opts.mmap && !h_.big_endian && !h_.fortran_order && aligned_for(h_.dtype, h_.header_bytes)) mapping_ = file_.map();
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(src.path());
  }
  const std::vector<EntryInfo>& entries() const { return entries_; }
  /// The tree is the tensor itself.
  Value skeleton() const { return Value{{"tensor", std::uint64_t{0}}}; }
  const detail::npy::Header& header() const { return h_; }

  void read_into(std::size_t i, std::span<std::byte> dst) {
    const auto& e = entries_.at(i);
    if (dst.size() != e.nbytes) throw mismatch_error("destination size differs", e.path.str(), std::to_string(e.nbytes) + " bytes", std::to_string(dst.size()) + " bytes", path_);
    if (!h_.fortran_order) {
      file_.pread_all(dst, h_.header_bytes);
      detail::npy::to_native(h_, dst, dst);
      return;
    }
    auto stored = detail::new_buffer(dst.size(), path_);
    file_.pread_all(stored, h_.header_bytes);
    detail::npy::to_native(h_, stored, dst);
  }
  Tensor read_tensor(std::size_t i) {
    const auto& e = entries_.at(i);
    if (mapping_) return Tensor::view_of({e.dtype, e.shape, mapping_->data() + h_.header_bytes, static_cast<std::size_t>(e.nbytes)}, mapping_);
    Tensor t = detail::new_tensor(e.dtype, e.shape, path_, e.path.str());
    read_into(i, {t.mutable_data(), t.nbytes()});
    return t;
  }

 private:
  std::string path_;
  io::Source file_;
  detail::npy::Header h_;
  std::vector<EntryInfo> entries_;
  std::shared_ptr<const io::Mapping> mapping_;
};

}  // namespace npy

namespace npz {

/// The member that holds the tree.
inline constexpr std::string_view tree_member = "__ckpt_tree__.npy";
/// Name of a tensor saved at the root (NumPy's name for a positional array).
inline constexpr std::string_view root_name = "arr_0";

/// Writes an .npz through an AtomicFile, one member per tensor as it arrives, then the tree.
class OutputArchive {
 public:
  OutputArchive(const std::filesystem::path& path, const SaveOptions& opts = {})
      : file_(path, opts.fsync), zip_(file_.writer()), path_(path.string()),
        deflate_(detail::codec_from_name(opts.codec, path_) == detail::Codec::zlib), level_(opts.compression_level) {}

  void begin_group(const KeyPath& p, Container c) { tree_.begin_group(p, c); }
  void end_group(const KeyPath& p) { tree_.end_group(p); }
  void write_value(const KeyPath& p, const Value& v) { tree_.value(p, v); }
  void write_tensor(const KeyPath& p, const TensorView& t) {
    const auto reserved = tree_member.substr(0, tree_member.size() - 4);
    const std::string member = names_.add(p, root_name, path_, reserved) + ".npy";
    const auto header = detail::npy::encode_header(t.dtype, t.shape);
    try {
      zip_.add_parts(member, {header, t.bytes()}, deflate_, deflate_ ? 0 : detail::npy::alignment, level_);
    } catch (const unsupported_error& e) {
      throw unsupported_error(e.reason(), path_, p.str());
    }
    tree_.tensor(p, names_.names().size() - 1);
  }
  void commit() {
    const Value doc{{"format", "ckpt-npz"}, {"version", 1}, {"tree", detail::name_tensors(tree_.root(), names_.names())}};
    const std::string text = doc.dump();
    const auto header = detail::npy::encode_header(DType::u8, {static_cast<std::int64_t>(text.size())});
    zip_.add_parts(tree_member, {header, std::as_bytes(std::span(text))}, deflate_, 0, level_);
    zip_.finish();
    file_.commit();
  }

 private:
  io::AtomicFile file_;
  detail::zip::Writer zip_;
  std::string path_;
  bool deflate_;
  int level_;
  detail::SkeletonBuilder tree_;
  detail::FlatNames names_;
};

/// The members the tree member's document may have, for strict reads (LoadOptions::strict).
inline const detail::JsonShape& tree_doc_shape() {
  using M = detail::JsonShape::Member;
  static const M members[] = {{"format"}, {"version"}, {"tree", &detail::skeleton_shape()}};
  static const detail::JsonShape doc{members};
  return doc;
}

/// Reads an .npz (ours, or NumPy's np.savez / np.savez_compressed), from a file or memory.
/// Members are validated when it is opened (detail/zip.hpp) and each .npy header is parsed;
/// data is read per entry, with the member's CRC-32 checked (always for deflated members; for
/// stored ones unless mmap).
class InputArchive {
 public:
  InputArchive(const std::filesystem::path& path, const LoadOptions& opts = {}) : InputArchive(io::Source::file(path), opts) {}
  explicit InputArchive(const io::Source& src, const LoadOptions& opts = {}) try : path_(src.path()), opts_(opts), zip_(src) {
    std::unordered_map<std::string, std::size_t> index;
    const Value* tree_doc = nullptr;
    Value doc;
    for (const auto& m : zip_.entries()) {
      if (m.name == tree_member) {
        doc = read_tree(m);
        tree_doc = &doc;
        continue;
      }
      if (!m.name.empty() && m.name.back() == '/') continue;  // a directory entry
      if (m.name.size() < 4 || m.name.compare(m.name.size() - 4, 4, ".npy") != 0)
        throw unsupported_error("npz member is not a .npy array", path_, m.name);
      const std::string stem = m.name.substr(0, m.name.size() - 4);
      auto h = header_of(m);
      EntryInfo e{KeyPath{stem}, h.dtype, h.shape, h.nbytes, m.method == 8 ? m.compressed_size : h.nbytes, m.method == 8 ? "deflate" : "raw"};
      index.emplace(stem, entries_.size());
      entries_.push_back(std::move(e));
      members_.push_back(&m);
      headers_.push_back(std::move(h));
    }
    if (tree_doc) skeleton_ = detail::index_tensors((*tree_doc)["tree"], index, path_);
    if (opts_.mmap) mapping_ = src.map();
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(src.path());
  }

  const std::vector<EntryInfo>& entries() const { return entries_; }
  Value skeleton() const { return skeleton_; }
  const std::string& path() const { return path_; }

  void read_into(std::size_t i, std::span<std::byte> dst) {
    const auto& e = entries_.at(i);
    if (dst.size() != e.nbytes) throw mismatch_error("destination size differs", e.path.str(), std::to_string(e.nbytes) + " bytes", std::to_string(dst.size()) + " bytes", path_);
    const auto& h = headers_[i];
    const bool verify = opts_.verify_checksums() || members_[i]->method == 8;
    if (!h.fortran_order) {
      zip_.read_range(*members_[i], h.header_bytes, dst, verify);
      detail::npy::to_native(h, dst, dst);
      return;
    }
    auto stored = detail::new_buffer(dst.size(), path_, e.path.str());
    zip_.read_range(*members_[i], h.header_bytes, stored, verify);
    detail::npy::to_native(h, stored, dst);
  }
  /// A view into the mapping for stored, aligned, little-endian C-order members under mmap;
  /// otherwise an owning tensor.
  Tensor read_tensor(std::size_t i) {
    const auto& e = entries_.at(i);
    const auto& h = headers_[i];
    const auto& m = *members_[i];
    const std::uint64_t off = m.data_offset + h.header_bytes;
    if (mapping_ && m.method == 0 && !h.big_endian && !h.fortran_order && npy::aligned_for(e.dtype, off)) {
      if (opts_.verify_checksums()) verify_entry(i);
      return Tensor::view_of({e.dtype, e.shape, mapping_->data() + off, static_cast<std::size_t>(e.nbytes)}, mapping_);
    }
    Tensor t = detail::new_tensor(e.dtype, e.shape, path_, e.path.str());
    read_into(i, {t.mutable_data(), t.nbytes()});
    return t;
  }
  /// Check entry i's member against its CRC-32 without keeping the bytes.
  void verify_entry(std::size_t i) { zip_.read_range(*members_.at(i), 0, {}, true); }

 private:
  detail::npy::Header header_of(const detail::zip::Entry& m) {
    // Headers are short: decode the first bytes once and serve the parser from them.
    const auto head = zip_.read_prefix(m, 256);
    return detail::npy::parse_header(
        [&](std::span<std::byte> d, std::uint64_t off) {
          if (off + d.size() <= head.size()) std::memcpy(d.data(), head.data() + off, d.size());
          else zip_.read_range(m, off, d, false);
        },
        m.uncompressed_size, path_, m.name);
  }
  Value read_tree(const detail::zip::Entry& m) {
    auto h = header_of(m);
    if (h.dtype != DType::u8 || h.shape.size() != 1 || h.fortran_order)
      throw format_error("invalid npz tree member", path_, m.data_offset, m.name, "a 1-D uint8 array", std::string(name(h.dtype)) + " " + shape_string(h.shape));
    std::string text(static_cast<std::size_t>(h.nbytes), '\0');
    zip_.read_range(m, h.header_bytes, std::as_writable_bytes(std::span(text)), true);
    Value doc = detail::parse_json_checked(text, "invalid npz tree member", path_, m.data_offset, {.shape = &tree_doc_shape(), .strict = opts_.strict});
    if (!doc.is_object() || detail::string_member(doc, "format") != "ckpt-npz" || !doc.contains("tree"))
      throw format_error("invalid npz tree member (no \"format\": \"ckpt-npz\" with a \"tree\")", path_, m.data_offset, m.name);
    if (!detail::integer_member_is(doc, "version", 1)) throw unsupported_error("unsupported ckpt-npz tree version " + doc["version"].dump() + " (this library reads 1)", path_, m.name);
    return doc;
  }

  std::string path_;
  LoadOptions opts_;
  detail::zip::Reader zip_;
  std::vector<EntryInfo> entries_;
  std::vector<const detail::zip::Entry*> members_;
  std::vector<detail::npy::Header> headers_;
  Value skeleton_;
  std::shared_ptr<const io::Mapping> mapping_;
};

}  // namespace npz

template <>
struct archive_traits<npy_format> {
  static constexpr std::string_view name = "npy";
  static constexpr std::array<std::string_view, 1> extensions{".npy"};
  static constexpr ArchiveCaps caps{.metadata_tree = false, .compression = false, .zero_copy_read = true,
                                    .streaming_write = true, .checksums = false, .directory = false};
  static bool sniff(std::span<const std::byte> head) { return detail::npy::sniff(head); }
  using output_archive = npy::OutputArchive;
  using input_archive = npy::InputArchive;
};

template <>
struct archive_traits<npz_format> {
  static constexpr std::string_view name = "npz";
  static constexpr std::array<std::string_view, 1> extensions{".npz"};
  static constexpr ArchiveCaps caps{.metadata_tree = true, .compression = true, .zero_copy_read = true,
                                    .streaming_write = true, .checksums = true, .directory = false};
  /// A zip whose first member is a .npy (PyTorch's zips start with "<name>/data.pkl"), or an
  /// empty zip (np.savez with no arrays).
  static bool sniff(std::span<const std::byte> head) {
    const auto u8 = [&](std::size_t i) { return static_cast<unsigned char>(head[i]); };
    if (head.size() >= 4 && u8(0) == 'P' && u8(1) == 'K' && u8(2) == 5 && u8(3) == 6) return true;
    if (head.size() < 30 || u8(0) != 'P' || u8(1) != 'K' || u8(2) != 3 || u8(3) != 4) return false;
    const std::size_t n = detail::load_le<std::uint16_t>(head.data() + 26);
    if (n < 4 || head.size() < 30 + n) return false;
    return std::memcmp(head.data() + 30 + n - 4, ".npy", 4) == 0;
  }
  using output_archive = npz::OutputArchive;
  using input_archive = npz::InputArchive;
};

}  // namespace ckpt
