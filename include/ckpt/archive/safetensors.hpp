// ckpt/archive/safetensors.hpp — the Hugging Face safetensors backend (`.safetensors`), and its
// sharded layout (`model-0000i-of-0000N.safetensors` + `model.safetensors.index.json`).
// File: u64 little-endian header length N, N bytes of JSON header, then the tensors' bytes,
// contiguous. Header: {"__metadata__": {string: string}, "<name>": {"dtype": "F32", "shape":
// [..], "data_offsets": [begin, end]}, ...} with offsets relative to the start of the data.
// ckpt's conventions on top of the spec (any other reader still sees plain tensors):
//  - tensors are named by their key path joined with '.' (KeyPath::joined), a root tensor "tensor";
//  - the header is padded with spaces so the data starts 64-byte aligned, and tensors are laid
//    out by decreasing element size so each is aligned to its element size;
//  - __metadata__ holds "format": "pt" (what transformers expects), "ckpt.tree": the exact
//    StateDict tree as a JSON string whose tensor leaves name their tensor, and, when there are
//    complex tensors, "ckpt.complex": a JSON string {"name": "c64" | "c128"}: a complex tensor
//    is stored as its real view (F32/F64 with a trailing dimension of 2, as torch.view_as_real);
//  - the reader enforces the reference implementation's validation (header <= 100 MB, UTF-8,
//    starts with '{', unique names, offsets contiguous with no holes or overlaps once sorted,
//    size = numel × element size, last end = data size) and says which rule broke.
// Files without "ckpt.tree" load flat: each tensor is a leaf whose single key is its name.
#pragma once

#include <algorithm>      // std::stable_sort
#include <array>          // extensions
#include <cstring>        // std::memcpy
#include <filesystem>     // paths
#include <map>            // ordered weight_map
#include <memory>         // shared mapping
#include <span>           // bytes
#include <string>         // names
#include <limits>         // shape bounds
#include <unordered_map>  // name -> entry
#include <utility>        // std::pair
#include <vector>         // entries

#include "../concepts.hpp"          // archive concepts, EntryInfo
#include "../detail/endian.hpp"     // header length
#include "../detail/flat_names.hpp" // tensor names in the stored tree
#include "../detail/limits.hpp"     // allocations sized by the file
#include "../detail/skeleton.hpp"   // SkeletonBuilder
#include "../io/file.hpp"           // AtomicFile, AtomicDir, File
#include "../io/source.hpp"         // Source: the file, or bytes in memory

namespace ckpt {

/// Format tag of the safetensors backend (one file).
struct safetensors_format {};
/// Format tag of the Hugging Face sharded layout: a directory of shards plus an index.
struct safetensors_sharded_format {};

namespace safetensors {

/// The reference implementation's header limit.
inline constexpr std::uint64_t max_header_bytes = 100'000'000;
/// Data start alignment of the files we write.
inline constexpr std::uint64_t alignment = 64;
/// Name of a tensor saved at the root of a StateDict.
inline constexpr std::string_view root_name = "tensor";
inline constexpr std::string_view tree_key = "ckpt.tree";
inline constexpr std::string_view complex_key = "ckpt.complex";
/// Index file of the sharded layout, and the default shard size (transformers' "5GB").
inline constexpr std::string_view index_name = "model.safetensors.index.json";
inline constexpr std::uint64_t default_max_shard_bytes = 5'000'000'000;

using Metadata = std::vector<std::pair<std::string, std::string>>;

/// The members a header may have, for strict reads (LoadOptions::strict): "__metadata__" (free
/// strings) and tensors, whose info has exactly "dtype", "shape" and "data_offsets" (the spec's
/// fields; the reference implementation ignores others, ckpt refuses them unless not strict).
inline const detail::JsonShape& header_shape() {
  using M = detail::JsonShape::Member;
  static const M info_members[] = {{"dtype"}, {"shape"}, {"data_offsets"}};
  static const detail::JsonShape info{info_members};
  static const M members[] = {{"__metadata__"}};
  static const detail::JsonShape header{members, &info};
  return header;
}
/// The members an index file may have, for strict reads: "metadata" (free) and "weight_map".
inline const detail::JsonShape& index_shape() {
  using M = detail::JsonShape::Member;
  static const M members[] = {{"metadata"}, {"weight_map"}};
  static const detail::JsonShape index{members};
  return index;
}

/// One tensor to write: its name and how it is stored (complex as its real view).
struct Item {
  std::string name;
  TensorView view;
  DType stored = DType::f32;
  Shape shape;
};

inline Item make_item(std::string name, const TensorView& t) {
  Item it{std::move(name), t, t.dtype, t.shape};
  if (t.dtype == DType::c64 || t.dtype == DType::c128) {
    it.stored = t.dtype == DType::c64 ? DType::f32 : DType::f64;
    it.shape.push_back(2);
  }
  return it;
}

/// Write one safetensors file: header (metadata first, then tensors by decreasing element
/// size), padded so the data starts 64-byte aligned, then the data.
inline void write_file(io::Writer& out, std::vector<Item> items, const Metadata& metadata) {
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return element_size(a.stored) > element_size(b.stored); });
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& md = h["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) md[k] = v;
  }
  std::uint64_t off = 0;
  for (const auto& it : items) {
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = detail::info(it.stored).safetensors;
    e["shape"] = it.shape;
    e["data_offsets"] = {off, off + it.view.nbytes};
    off += it.view.nbytes;
    h[it.name] = std::move(e);
  }
  std::string text = h.dump();
  text.append(static_cast<std::size_t>((alignment - (8 + text.size()) % alignment) % alignment), ' ');
  std::array<std::byte, 8> n{};
  detail::store_le<std::uint64_t>(n.data(), text.size());
  out.write(n);
  out.write_string(text);
  for (const auto& it : items) out.write(it.view.bytes());
}

/// Collects the tree and the tensors (by view) of a StateDict being written. The views must
/// stay valid until commit() — as they do under ckpt::save / write_state_dict — because the
/// header, written first, needs every tensor's size.
class Collector {
 public:
  explicit Collector(std::string path) : path_(std::move(path)) {}
  void begin_group(const KeyPath& p, Container c) { tree_.begin_group(p, c); }
  void end_group(const KeyPath& p) { tree_.end_group(p); }
  void write_value(const KeyPath& p, const Value& v) { tree_.value(p, v); }
  void write_tensor(const KeyPath& p, const TensorView& t) {
    items_.push_back(make_item(names_.add(p, root_name, path_, "__metadata__"), t));
    tree_.tensor(p, items_.size() - 1);
  }

 protected:
  std::string tree_json() { return detail::name_tensors(tree_.root(), names_.names()).dump(); }
  /// "ckpt.complex" for the complex tensors among `items` (empty when none).
  static std::string complex_json(const std::vector<Item>& items) {
    Value c = Value::object();
    for (const auto& it : items)
      if (it.view.dtype != it.stored) c[it.name] = name(it.view.dtype);
    return c.empty() ? std::string() : c.dump();
  }
  static Metadata metadata_for(const std::vector<Item>& items, std::string tree = {}) {
    Metadata md{{"format", "pt"}};
    if (!tree.empty()) md.emplace_back(tree_key, std::move(tree));
    if (auto c = complex_json(items); !c.empty()) md.emplace_back(complex_key, std::move(c));
    return md;
  }

  std::string path_;
  std::vector<Item> items_;
  detail::SkeletonBuilder tree_;
  detail::FlatNames names_;
};

/// Writes one .safetensors file through an AtomicFile at commit().
class OutputArchive : public Collector {
 public:
  OutputArchive(const std::filesystem::path& path, const SaveOptions& opts = {}) : Collector(path.string()), file_path_(path), opts_(opts) {}
  void commit() {
    io::AtomicFile f(file_path_, opts_.fsync);
    write_file(f.writer(), items_, metadata_for(items_, tree_json()));
    f.commit();
  }

 private:
  std::filesystem::path file_path_;
  SaveOptions opts_;
};

/// Reads one .safetensors file (or one in memory), validating the header as the reference
/// implementation does (and, with LoadOptions::strict, refusing tensor info members it lacks).
class InputArchive {
 public:
  InputArchive(const std::filesystem::path& path, const LoadOptions& opts = {}) : InputArchive(io::Source::file(path), opts) {}
  explicit InputArchive(const io::Source& src, const LoadOptions& opts = {}) try : path_(src.path()), opts_(opts), file_(src) {
    const auto size = file_.size();
    if (size < 8) throw rule("file shorter than the 8-byte header length", 0, "at least 8 bytes", std::to_string(size) + " bytes");
    std::array<std::byte, 8> nb{};
    file_.pread_all(nb, 0);
    const auto n = detail::load_le<std::uint64_t>(nb.data());
    if (n > max_header_bytes) throw rule("header larger than 100000000 bytes", 0, "at most 100000000 bytes", std::to_string(n) + " bytes");
    if (n > size - 8) throw rule("header length runs past the end of the file", 0, "at most " + std::to_string(size - 8) + " bytes", std::to_string(n) + " bytes");
    data_start_ = 8 + n;
    std::string text(static_cast<std::size_t>(n), '\0');
    file_.pread_all(std::as_writable_bytes(std::span(text)), 8);
    parse(text, size - data_start_);
    if (opts_.mmap) mapping_ = file_.map();
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(src.path());
  }

  const std::vector<EntryInfo>& entries() const { return entries_; }
  Value skeleton() const { return skeleton_; }
  const std::string& path() const { return path_; }
  /// Tensor names, in entry order (by data offset).
  const std::vector<std::string>& names() const { return names_; }
  /// The __metadata__ pairs, in file order.
  const Metadata& metadata() const { return metadata_; }
  /// Absolute file offset of the data (8 + header length).
  std::uint64_t data_start() const { return data_start_; }
  /// Absolute file offset of entry i's data.
  std::uint64_t offset(std::size_t i) const { return data_start_ + begins_.at(i); }

  void read_into(std::size_t i, std::span<std::byte> dst) {
    const auto& e = entries_.at(i);
    if (dst.size() != e.nbytes) throw mismatch_error("destination size differs", e.path.str(), std::to_string(e.nbytes) + " bytes", std::to_string(dst.size()) + " bytes", path_);
    if (mapping_ && !dst.empty()) std::memcpy(dst.data(), mapping_->data() + offset(i), dst.size());
    else file_.pread_all(dst, offset(i));
  }
  /// Under mmap, a view into the mapping when the data is aligned for its element type, and a
  /// copy when it is not (files from other writers); otherwise an owning tensor.
  Tensor read_tensor(std::size_t i) {
    const auto& e = entries_.at(i);
    if (mapping_ && offset(i) % detail::element_alignment(e.dtype) == 0)
      return Tensor::view_of({e.dtype, e.shape, mapping_->data() + offset(i), static_cast<std::size_t>(e.nbytes)}, mapping_);
    Tensor t = detail::new_tensor(e.dtype, e.shape, path_, e.path.str());
    read_into(i, {t.mutable_data(), t.nbytes()});
    return t;
  }

 private:
  format_error rule(const std::string& what, std::uint64_t at, std::string expected = {}, std::string got = {}, std::string key = {}) const {
    return format_error("invalid safetensors header: " + what, path_, at, std::move(key), std::move(expected), std::move(got));
  }
  static bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
      const auto c = static_cast<unsigned char>(s[i]);
      const std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
      if (!len || i + len > s.size()) return false;
      std::uint32_t cp = len == 1 ? c : c & (0x7f >> len);
      for (std::size_t k = 1; k < len; ++k) {
        const auto d = static_cast<unsigned char>(s[i + k]);
        if ((d & 0xc0) != 0x80) return false;
        cp = (cp << 6) | (d & 0x3f);
      }
      if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) return false;
      i += len;
    }
    return true;
  }

  void parse(const std::string& text, std::uint64_t data_size) {
    if (!valid_utf8(text)) throw rule("header is not valid UTF-8", 8);
    if (text.empty() || text[0] != '{') throw rule("header does not start with '{'", 8);
    // Parse keeping file order, rejecting duplicate keys at any level and deep nesting.
    const auto h = detail::parse_json_checked<nlohmann::ordered_json>(text, "invalid safetensors header", path_, 8,
                                                                       {.max_depth = 64, .reject_duplicates = true, .shape = &header_shape(), .strict = opts_.strict});
    if (!h.is_object()) throw rule("header is not a JSON object", 8);

    struct Raw { std::string name; DType dtype; Shape shape; std::uint64_t begin, end; };
    std::vector<Raw> raw;
    for (auto it = h.begin(); it != h.end(); ++it) {
      const std::string& key = it.key();
      const auto& v = it.value();
      if (key == "__metadata__") {
        if (!v.is_object()) throw rule("__metadata__ must map strings to strings", 8, "an object of strings", v.dump().substr(0, 80));
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) throw rule("__metadata__ must map strings to strings", 8, "a string", m.value().dump().substr(0, 80), m.key());
          metadata_.emplace_back(m.key(), m.value().get<std::string>());
        }
        continue;
      }
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        throw rule("tensor info must have dtype, shape and data_offsets", 8, "{\"dtype\", \"shape\", \"data_offsets\"}", v.dump().substr(0, 80), key);
      const auto& dt = v["dtype"];
      if (!dt.is_string()) throw rule("dtype must be a string", 8, "a dtype name", dt.dump(), key);
      auto d = dtype_from_safetensors(dt.get<std::string>());
      if (!d) throw unsupported_error("safetensors dtype '" + dt.get<std::string>() + "' is not supported (supported: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I8 I16 I32 I64 U8 U16 U32 U64 BOOL C64)", path_, key);
      Raw r{key, *d, {}, 0, 0};
      const auto& sh = v["shape"];
      if (!sh.is_array()) throw rule("shape must be a list of non-negative integers", 8, "a list", sh.dump().substr(0, 80), key);
      for (const auto& x : sh) {
        if (!x.is_number_unsigned() || x.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          throw rule("shape must be a list of non-negative integers", 8, "non-negative integers", sh.dump().substr(0, 80), key);
        r.shape.push_back(x.get<std::int64_t>());
      }
      const auto& off = v["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw rule("data_offsets must be [begin, end] (non-negative integers)", 8, "[begin, end]", off.dump().substr(0, 80), key);
      r.begin = off[0].get<std::uint64_t>();
      r.end = off[1].get<std::uint64_t>();
      raw.push_back(std::move(r));
    }
    std::stable_sort(raw.begin(), raw.end(), [](const Raw& a, const Raw& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    std::uint64_t at = 0;
    for (const auto& r : raw) {
      const auto where = "[" + std::to_string(r.begin) + ", " + std::to_string(r.end) + "]";
      if (r.end < r.begin) throw rule("data_offsets end before begin", 8, "begin <= end", where, r.name);
      if (r.begin > at) throw rule("hole in the data before this tensor (offsets must be contiguous)", 8, "begin " + std::to_string(at), where, r.name);
      if (r.begin < at) throw rule("tensor data overlaps the previous tensor", 8, "begin " + std::to_string(at), where, r.name);
      auto nb = checked_nbytes(r.dtype, r.shape);
      if (!nb) throw rule("shape overflows (numel × element size)", 8, "a size below 2^63", shape_string(r.shape), r.name);
      if (*nb != r.end - r.begin)
        throw rule("byte size does not match shape and dtype", 8, std::to_string(*nb) + " bytes (" + shape_string(r.shape) + " " + std::string(detail::info(r.dtype).safetensors) + ")", std::to_string(r.end - r.begin) + " bytes", r.name);
      at = r.end;
    }
    if (at != data_size) throw rule("data does not end at the end of the file", 8, std::to_string(at) + " bytes of data", std::to_string(data_size) + " bytes after the header");

    std::unordered_map<std::string, std::size_t> index;
    for (auto& r : raw) {
      index.emplace(r.name, entries_.size());
      entries_.push_back(EntryInfo{KeyPath{r.name}, r.dtype, r.shape, r.end - r.begin, r.end - r.begin, "raw"});
      names_.push_back(r.name);
      begins_.push_back(r.begin);
    }
    for (const auto& [k, v] : metadata_) {
      if (k == complex_key) apply_complex(v, index);
      if (k == tree_key)
        skeleton_ = detail::index_tensors(detail::parse_json_checked(v, "invalid ckpt.tree metadata", path_, 8, {.shape = &detail::skeleton_shape(), .strict = opts_.strict}), index, path_);
    }
  }
  void apply_complex(const std::string& text, const std::unordered_map<std::string, std::size_t>& index) {
    const Value c = detail::parse_json_checked(text, "invalid ckpt.complex metadata", path_, 8);
    if (!c.is_object()) throw rule("ckpt.complex must be a JSON object", 8);
    for (const auto& [name, kind] : c.items()) {
      auto it = index.find(name);
      const DType want = kind == "c64" ? DType::c64 : DType::c128;
      if (it == index.end() || !kind.is_string() || (kind != "c64" && kind != "c128")) throw rule("ckpt.complex names an unknown tensor or kind", 8, "a tensor and c64/c128", kind.dump(), name);
      auto& e = entries_[it->second];
      if (e.dtype != (want == DType::c64 ? DType::f32 : DType::f64) || e.shape.empty() || e.shape.back() != 2)
        throw rule("complex tensor not stored as its real view", 8, want == DType::c64 ? "F32 [..., 2]" : "F64 [..., 2]", std::string(detail::info(e.dtype).safetensors) + " " + shape_string(e.shape), name);
      e.dtype = want;
      e.shape.pop_back();
    }
  }

  std::string path_;
  LoadOptions opts_;
  io::Source file_;
  std::uint64_t data_start_ = 0;
  std::vector<EntryInfo> entries_;
  std::vector<std::string> names_;
  std::vector<std::uint64_t> begins_;
  Metadata metadata_;
  Value skeleton_;
  std::shared_ptr<const io::Mapping> mapping_;
};

// ---- the sharded layout ---------------------------------------------------------------------

/// Writes a directory holding `model-0000i-of-0000N.safetensors` shards of at most
/// `max_shard_bytes` each (a tensor larger than that gets a shard of its own) and
/// `model.safetensors.index.json` ({"metadata": {"total_size", "ckpt.tree"}, "weight_map"}).
/// The directory is replaced as a whole (io::AtomicDir): put other files (config.json) in
/// after saving.
class ShardedOutputArchive : public Collector {
 public:
  ShardedOutputArchive(const std::filesystem::path& dir, const SaveOptions& opts = {}, std::uint64_t max_shard_bytes = default_max_shard_bytes)
      : Collector(dir.string()), dir_(dir), opts_(opts), max_(max_shard_bytes) {
    if (max_ == 0) throw unsupported_error("max_shard_bytes must be positive", path_);
  }
  void commit() {
    std::vector<std::vector<Item>> shards(1);
    std::uint64_t cur = 0, total = 0;
    for (const auto& it : items_) {
      if (!shards.back().empty() && cur + it.view.nbytes > max_) {
        shards.emplace_back();
        cur = 0;
      }
      shards.back().push_back(it);
      cur += it.view.nbytes;
      total += it.view.nbytes;
    }
    io::AtomicDir d(dir_, opts_.fsync);
    Value weight_map = Value::object();
    for (std::size_t s = 0; s < shards.size(); ++s) {
      const std::string file = shard_name(s + 1, shards.size());
      io::File f = io::File::create_exclusive(d.temp_path() / file);
      io::FileWriter w(f);
      write_file(w, shards[s], metadata_for(shards[s]));
      w.flush();
      if (opts_.fsync) f.fsync();
      f.close();
      for (const auto& it : shards[s]) weight_map[it.name] = file;
    }
    const Value index{{"metadata", {{"total_size", total}, {std::string(tree_key), tree_json()}}}, {"weight_map", std::move(weight_map)}};
    const std::string text = index.dump(2) + "\n";
    d.write_file(std::string(index_name), std::as_bytes(std::span(text)));
    d.commit();
  }
  /// "model-00002-of-00005.safetensors"
  static std::string shard_name(std::size_t i, std::size_t n) {
    auto five = [](std::size_t v) { std::string s = std::to_string(v); return std::string(s.size() < 5 ? 5 - s.size() : 0, '0') + s; };
    return "model-" + five(i) + "-of-" + five(n) + ".safetensors";
  }

 private:
  std::filesystem::path dir_;
  SaveOptions opts_;
  std::uint64_t max_;
};

/// Reads a sharded set from its directory or its index file: every shard named by the index is
/// opened and validated, and each tensor must be in the shard the index says.
class ShardedInputArchive {
 public:
  ShardedInputArchive(const std::filesystem::path& path, const LoadOptions& opts = {}) try {
    const auto index_path = std::filesystem::is_directory(path) ? path / index_name : path;
    path_ = index_path.string();
    io::File f = io::File::open_read(index_path);
    const auto size = f.size();
    if (size > max_header_bytes) throw format_error("safetensors index larger than 100000000 bytes", path_, 0);
    std::string text(static_cast<std::size_t>(size), '\0');
    f.pread_all(std::as_writable_bytes(std::span(text)), 0);
    const Value idx = detail::parse_json_checked(text, "invalid safetensors index", path_, 0, {.shape = &index_shape(), .strict = opts.strict});
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw format_error("not a safetensors index (no \"weight_map\" object)", path_, 0);
    std::map<std::string, std::size_t> per_file;  // shard -> number of tensors (shards in name order)
    const Value& wm = idx["weight_map"];
    for (const auto& [name, file] : wm.items()) {
      if (!file.is_string()) throw format_error("weight_map values must be shard file names", path_, 0, name);
      const auto& fn = file.get_ref<const std::string&>();
      if (fn.empty() || fn == "." || fn == ".." || fn.find_first_of("/\\") != std::string::npos || fn.find('\0') != std::string::npos)
        throw format_error("weight_map names a shard outside the index's directory", path_, 0, name, "a plain file name", fn);
      ++per_file[fn];
    }
    const auto dir = index_path.parent_path();
    std::unordered_map<std::string, std::size_t> index;
    for (const auto& [file, count] : per_file) {
      const auto shard_path = (dir / file).string();
      shards_.emplace_back(dir / file, opts);
      const auto& shard = shards_.back();
      for (std::size_t i = 0; i < shard.names().size(); ++i) {
        const auto& n = shard.names()[i];
        auto it = wm.find(n);
        if (it == wm.end() || *it != file)
          throw format_error("shard holds a tensor the index maps elsewhere", shard_path, format_error::no_offset, n, file, it == wm.end() ? "not in the index" : it->dump());
        index.emplace(n, entries_.size());
        entries_.push_back(shard.entries()[i]);
        where_.emplace_back(shards_.size() - 1, i);
      }
      if (shard.names().size() != count)
        throw format_error("shard lacks tensors the index maps to it", shard_path, format_error::no_offset, {}, std::to_string(count) + " tensors", std::to_string(shard.names().size()) + " tensors");
    }
    if (auto md = idx.find("metadata"); md != idx.end() && md->is_object())
      if (auto t = md->find(std::string(tree_key)); t != md->end()) {
        if (!t->is_string()) throw format_error("index metadata ckpt.tree must be a JSON string", path_, 0);
        skeleton_ = detail::index_tensors(detail::parse_json_checked(t->get<std::string>(), "invalid ckpt.tree in the index", path_, 0, {.shape = &detail::skeleton_shape(), .strict = opts.strict}), index, path_);
      }
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(path.string());
  }
  const std::vector<EntryInfo>& entries() const { return entries_; }
  Value skeleton() const { return skeleton_; }
  const std::string& path() const { return path_; }
  std::size_t shard_count() const { return shards_.size(); }
  void read_into(std::size_t i, std::span<std::byte> dst) { shards_[where_.at(i).first].read_into(where_[i].second, dst); }
  Tensor read_tensor(std::size_t i) { return shards_[where_.at(i).first].read_tensor(where_[i].second); }

 private:
  std::string path_;
  std::vector<InputArchive> shards_;
  std::vector<EntryInfo> entries_;
  std::vector<std::pair<std::size_t, std::size_t>> where_;
  Value skeleton_;
};

/// Save `sd` as a Hugging Face sharded set in directory `dir` (see ShardedOutputArchive).
inline void save_sharded(const std::filesystem::path& dir, const StateDict& sd, std::uint64_t max_shard_bytes = default_max_shard_bytes,
                         const SaveOptions& opts = {}) {
  ShardedOutputArchive ar(dir, opts, max_shard_bytes);
  auto walk = [&](auto&& self, const StateDict& n, const KeyPath& p) -> void {
    if (n.is_tensor()) ar.write_tensor(p, n.tensor().view());
    else if (n.is_value()) ar.write_value(p, n.value());
    else {
      ar.begin_group(p, n.container());
      for (const auto& it : n.items()) self(self, it.value, p / it.key);
      ar.end_group(p);
    }
  };
  walk(walk, sd, KeyPath{});
  ar.commit();
}

}  // namespace safetensors

template <>
struct archive_traits<safetensors_format> {
  static constexpr std::string_view name = "safetensors";
  static constexpr std::array<std::string_view, 1> extensions{".safetensors"};
  static constexpr ArchiveCaps caps{.metadata_tree = true, .compression = false, .zero_copy_read = true,
                                    .streaming_write = false, .checksums = false, .directory = false};
  /// A small little-endian header length followed by a JSON object.
  static bool sniff(std::span<const std::byte> head) {
    if (head.size() < 10) return false;
    const auto n = detail::load_le<std::uint64_t>(head.data());
    const char a = static_cast<char>(head[8]), b = static_cast<char>(head[9]);
    return n >= 2 && n <= safetensors::max_header_bytes && a == '{' && (b == '"' || b == '}' || b == ' ' || b == '\n');
  }
  using output_archive = safetensors::OutputArchive;
  using input_archive = safetensors::InputArchive;
};

template <>
struct archive_traits<safetensors_sharded_format> {
  static constexpr std::string_view name = "safetensors-sharded";
  static constexpr std::array<std::string_view, 0> extensions{};
  static constexpr ArchiveCaps caps{.metadata_tree = true, .compression = false, .zero_copy_read = true,
                                    .streaming_write = false, .checksums = false, .directory = true};
  /// An index file: a JSON object whose first key is "metadata" or "weight_map".
  static bool sniff(std::span<const std::byte> head) {
    std::string_view s(reinterpret_cast<const char*>(head.data()), head.size());
    auto p = s.find_first_not_of(" \t\r\n");
    if (p == std::string_view::npos || s[p] != '{') return false;
    p = s.find_first_not_of(" \t\r\n", p + 1);
    if (p == std::string_view::npos) return false;
    s.remove_prefix(p);
    return s.starts_with("\"metadata\"") || s.starts_with("\"weight_map\"");
  }
  using output_archive = safetensors::ShardedOutputArchive;
  using input_archive = safetensors::ShardedInputArchive;
};

}  // namespace ckpt
