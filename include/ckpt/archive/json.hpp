// ckpt/archive/json.hpp — the JSON backend (`.json`): one readable document
//   {"format": "ckpt-json", "version": 1,
//    "tensors": [{"key": [...], "dtype": "f32", "shape": [2, 3], "data": "<base64>"}, ...],
//    "tree": <skeleton, as in detail/skeleton.hpp>}
// On read, "data" may also be a (nested) list of numbers for numeric dtypes, so people can
// write small checkpoints by hand. Not streaming: the document is built in memory.
#pragma once

#include <array>       // extensions
#include <filesystem>  // paths
#include <string>      // text
#include <vector>      // entries

#include "../concepts.hpp"         // archive concepts
#include "../detail/base64.hpp"    // tensor data
#include "../detail/limits.hpp"    // allocations sized by the file
#include "../detail/skeleton.hpp"  // tree skeleton
#include "../io/file.hpp"          // AtomicFile
#include "../io/source.hpp"        // Source: the file, or bytes in memory

namespace ckpt {

/// Format tag of the JSON backend.
struct json_format {};

namespace jsonfmt {
/// Largest .json checkpoint the reader accepts.
inline constexpr std::uint64_t max_file_bytes = std::uint64_t{4} << 30;

/// The members a document may have, for strict reads (LoadOptions::strict): the top level,
/// each tensor entry, and the tree's nodes.
inline const detail::JsonShape& document_shape() {
  using M = detail::JsonShape::Member;
  static const M entry_members[] = {{"key"}, {"dtype"}, {"shape"}, {"data"}};
  static const detail::JsonShape entry{entry_members};
  static const detail::JsonShape table{{}, nullptr, &entry};
  static const M members[] = {{"format"}, {"version"}, {"tensors", &table}, {"tree", &detail::skeleton_shape()}};
  static const detail::JsonShape doc{members};
  return doc;
}

class OutputArchive {
 public:
  OutputArchive(const std::filesystem::path& path, const SaveOptions& opts = {}) : path_(path), opts_(opts) {}
  void begin_group(const KeyPath& p, Container c) { tree_.begin_group(p, c); }
  void end_group(const KeyPath& p) { tree_.end_group(p); }
  void write_value(const KeyPath& p, const Value& v) { tree_.value(p, v); }
  void write_tensor(const KeyPath& p, const TensorView& t) {
    tree_.tensor(p, table_.size());
    table_.push_back(Value{{"key", p.keys()}, {"dtype", name(t.dtype)}, {"shape", t.shape}, {"data", detail::base64_encode(t.bytes())}});
  }
  void commit() {
    Value doc{{"format", "ckpt-json"}, {"version", 1}, {"tensors", std::move(table_)}, {"tree", std::move(tree_.root())}};
    io::AtomicFile f(path_, opts_.fsync);
    f.writer().write_string(doc.dump(1));
    f.writer().write_string("\n");
    f.commit();
  }

 private:
  std::filesystem::path path_;
  SaveOptions opts_;
  detail::SkeletonBuilder tree_;
  Value table_ = Value::array();
};

/// Reads a .json checkpoint (or one in memory) whole. With LoadOptions::strict (the default) a
/// member this version does not know is an error; without, it is skipped.
class InputArchive {
 public:
  InputArchive(const std::filesystem::path& path, const LoadOptions& opts = {}) : InputArchive(io::Source::file(path), opts) {}
  explicit InputArchive(const io::Source& src, const LoadOptions& opts = {}) try : path_(src.path()) {
    const auto size = src.size();
    if (size > max_file_bytes) throw format_error("JSON checkpoint larger than " + std::to_string(max_file_bytes) + " bytes", path_, 0);
    std::string text(static_cast<std::size_t>(size), '\0');
    src.pread_all(std::as_writable_bytes(std::span(text)), 0);
    Value doc = detail::parse_json_checked(text, "cannot parse JSON", path_, 0, {.shape = &document_shape(), .strict = opts.strict});
    if (!doc.is_object() || detail::string_member(doc, "format") != "ckpt-json") throw format_error("not a ckpt JSON checkpoint (no \"format\": \"ckpt-json\")", path_, 0);
    auto t = doc.find("tensors");
    if (t == doc.end() || !t->is_array()) throw format_error("missing \"tensors\" array", path_, 0);
    for (auto& j : *t) parse_entry(j);
    if (auto tr = doc.find("tree"); tr != doc.end()) skeleton_ = std::move(*tr);
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(src.path());
  }
  const std::vector<EntryInfo>& entries() const { return entries_; }
  Value skeleton() const { return skeleton_; }
  void read_into(std::size_t i, std::span<std::byte> dst) {
    const Tensor& t = tensors_.at(i);
    if (dst.size() != t.nbytes()) throw mismatch_error("destination size differs", entries_[i].path.str(), std::to_string(t.nbytes()) + " bytes", std::to_string(dst.size()) + " bytes", path_);
    if (t.nbytes()) std::memcpy(dst.data(), t.data(), t.nbytes());
  }
  Tensor read_tensor(std::size_t i) { return tensors_.at(i); }

 private:
  void parse_entry(const Value& j) {
    EntryInfo e;
    try {
      for (const auto& k : j.at("key")) e.path = e.path / k.get<std::string>();
      auto dt = dtype_from_name(j.at("dtype").get<std::string>());
      if (!dt) throw format_error("unknown dtype '" + j.at("dtype").get<std::string>() + "'", path_, format_error::no_offset, e.path.str(), dtype_names(), j.at("dtype").get<std::string>());
      e.dtype = *dt;
      const auto shape = detail::shape_of(j.at("shape"));
      if (!shape) throw format_error("invalid shape", path_, format_error::no_offset, e.path.str(), "a list of integers", detail::json_excerpt(j.at("shape")));
      e.shape = *shape;
      auto nb = checked_nbytes(e.dtype, e.shape);
      if (!nb || *nb > max_file_bytes) throw format_error("invalid shape", path_, format_error::no_offset, e.path.str(), "non-negative dims", shape_string(e.shape));
      e.nbytes = e.stored_nbytes = *nb;
      // The data is checked against the shape before the tensor is allocated, so that a shape
      // cannot make the reader allocate more than the data in the file.
      const auto& d = j.at("data");
      if (d.is_string()) {
        auto bytes = detail::base64_decode(d.get_ref<const std::string&>());
        if (!bytes) throw format_error("invalid base64 data", path_, format_error::no_offset, e.path.str());
        if (bytes->size() != e.nbytes) throw format_error("data size does not match shape", path_, format_error::no_offset, e.path.str(), std::to_string(e.nbytes) + " bytes", std::to_string(bytes->size()) + " bytes");
        Tensor t = detail::new_tensor(e.dtype, e.shape, path_, e.path.str());
        if (t.nbytes()) std::memcpy(t.mutable_data(), bytes->data(), t.nbytes());
        tensors_.push_back(std::move(t));
      } else {
        tensors_.push_back(from_list(d, e));
      }
    } catch (const nlohmann::json::exception& x) {
      throw format_error(std::string("malformed tensor entry: ") + x.what(), path_, format_error::no_offset, e.path.str());
    }
    entries_.push_back(std::move(e));
  }
  Tensor from_list(const Value& d, const EntryInfo& e) {
    std::vector<const Value*> flat;
    auto rec = [&](auto&& self, const Value& v, std::size_t depth) -> void {
      if (depth > 64) throw format_error("data nested too deeply", path_, format_error::no_offset, e.path.str());
      if (v.is_array()) for (const auto& x : v) self(self, x, depth + 1);
      else flat.push_back(&v);
    };
    rec(rec, d, 0);
    const std::uint64_t numel = e.nbytes / element_size(e.dtype);
    if (flat.size() != numel) throw format_error("data length does not match shape", path_, format_error::no_offset, e.path.str(), std::to_string(numel) + " values", std::to_string(flat.size()) + " values");
    Tensor t = detail::new_tensor(e.dtype, e.shape, path_, e.path.str());
    auto put = [&]<class T>(T*) {
      auto out = t.mutable_values<T>();
      for (std::size_t i = 0; i < flat.size(); ++i) {
        if (!flat[i]->is_number() && !flat[i]->is_boolean()) throw format_error("non-numeric data value", path_, format_error::no_offset, e.path.str());
        const auto x = detail::number_as<T>(*flat[i]);
        if (!x) throw format_error("data value out of range for " + std::string(name(t.dtype())), path_, format_error::no_offset, e.path.str(), "a value " + std::string(name(t.dtype())) + " can hold", detail::json_excerpt(*flat[i]));
        out[i] = *x;
      }
    };
    switch (t.dtype()) {
      case DType::f64: put(static_cast<double*>(nullptr)); break;
      case DType::f32: put(static_cast<float*>(nullptr)); break;
      case DType::i8: put(static_cast<std::int8_t*>(nullptr)); break;
      case DType::i16: put(static_cast<std::int16_t*>(nullptr)); break;
      case DType::i32: put(static_cast<std::int32_t*>(nullptr)); break;
      case DType::i64: put(static_cast<std::int64_t*>(nullptr)); break;
      case DType::u8: put(static_cast<std::uint8_t*>(nullptr)); break;
      case DType::u16: put(static_cast<std::uint16_t*>(nullptr)); break;
      case DType::u32: put(static_cast<std::uint32_t*>(nullptr)); break;
      case DType::u64: put(static_cast<std::uint64_t*>(nullptr)); break;
      case DType::boolean: put(static_cast<bool*>(nullptr)); break;
      default: throw unsupported_error("list data is only accepted for f32/f64/integer/bool tensors; use base64 for " + std::string(name(t.dtype())), path_, e.path.str());
    }
    return t;
  }

  std::string path_;
  std::vector<EntryInfo> entries_;
  std::vector<Tensor> tensors_;
  Value skeleton_;
};
}  // namespace jsonfmt

template <>
struct archive_traits<json_format> {
  static constexpr std::string_view name = "json";
  static constexpr std::array<std::string_view, 1> extensions{".json"};
  static constexpr ArchiveCaps caps{.metadata_tree = true, .compression = false, .zero_copy_read = false,
                                    .streaming_write = false, .checksums = false, .directory = false};
  /// A document starting (after whitespace) with '{' that names "ckpt-json" near the start.
  static bool sniff(std::span<const std::byte> head) {
    std::string_view s(reinterpret_cast<const char*>(head.data()), head.size());
    const auto p = s.find_first_not_of(" \t\r\n");
    return p != std::string_view::npos && s[p] == '{' && s.find("ckpt-json") != std::string_view::npos;
  }
  using output_archive = jsonfmt::OutputArchive;
  using input_archive = jsonfmt::InputArchive;
};

}  // namespace ckpt
