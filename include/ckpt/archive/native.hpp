// ckpt/archive/native.hpp — the native `.ckpt` backend (spec: docs/FORMAT.md).
// One file, written in one streaming pass: a 64-byte header, each tensor's bytes at a 64-byte
// aligned offset, a JSON footer (tensor table with CRC-32s + the tree skeleton), and a 32-byte
// trailer that locates the footer. Loads are eager (checksums verified) or zero-copy mmap.
#pragma once

#include <algorithm>   // sorting entries for the overlap check
#include <array>       // extensions
#include <cstring>     // magic compare
#include <filesystem>  // paths
#include <memory>      // shared mapping
#include <optional>    // mapping
#include <span>        // bytes
#include <string>      // names
#include <vector>      // entry table

#include "../concepts.hpp"        // archive concepts, EntryInfo
#include "../detail/codec.hpp"    // raw / zlib tensor codecs
#include "../detail/crc32.hpp"    // CRC-32 per tensor
#include "../detail/lane.hpp"     // checksums and copies on a second thread
#include "../detail/endian.hpp"   // header / trailer fields
#include "../detail/limits.hpp"   // zlib's maximum ratio, allocations sized by the file
#include "../detail/skeleton.hpp" // tree skeleton
#include "../io/file.hpp"         // AtomicFile
#include "../io/source.hpp"       // Source: the file, or bytes in memory
#include "../version.hpp"         // native_format_version

namespace ckpt {

/// Format tag of the native backend.
struct native_format {};

namespace native {
inline constexpr std::array<unsigned char, 8> magic = {0x89, 'C', 'K', 'P', 'T', '\r', '\n', 0x1a};
inline constexpr std::array<unsigned char, 8> end_magic = {'C', 'K', 'P', 'T', '-', 'E', 'N', 'D'};
inline constexpr std::uint64_t header_size = 64;
inline constexpr std::uint64_t trailer_size = 32;
inline constexpr std::uint64_t alignment = 64;
/// Largest footer a reader accepts (a hostile file cannot make us allocate more).
inline constexpr std::uint64_t max_footer_bytes = std::uint64_t{1} << 30;

/// The members a footer may have, for strict reads (LoadOptions::strict): the top level, each
/// tensor table entry, and the tree's nodes.
inline const detail::JsonShape& footer_shape() {
  using M = detail::JsonShape::Member;
  static const M entry_members[] = {{"key"}, {"dtype"}, {"shape"}, {"offset"}, {"nbytes"}, {"stored_nbytes"}, {"codec"}, {"crc32"}};
  static const detail::JsonShape entry{entry_members};
  static const detail::JsonShape table{{}, nullptr, &entry};
  static const M members[] = {{"format"}, {"version"}, {"library"}, {"alignment"}, {"tensors", &table}, {"tree", &detail::skeleton_shape()}};
  static const detail::JsonShape footer{members};
  return footer;
}

/// Writes a .ckpt file through an AtomicFile: nothing appears under `path` until commit().
class OutputArchive {
 public:
  OutputArchive(const std::filesystem::path& path, const SaveOptions& opts = {})
      : file_(path, opts.fsync), codec_(detail::codec_from_name(opts.codec, path.string())), level_(opts.compression_level) {
    std::array<std::byte, header_size> h{};
    std::memcpy(h.data(), magic.data(), magic.size());
    detail::store_le<std::uint32_t>(h.data() + 8, native_format_version);
    detail::store_le<std::uint32_t>(h.data() + 12, 0);  // flags
    out().write(h);
  }

  void begin_group(const KeyPath& p, Container c) { tree_.begin_group(p, c); }
  void end_group(const KeyPath& p) { tree_.end_group(p); }
  void write_value(const KeyPath& p, const Value& v) { tree_.value(p, v); }
  void write_tensor(const KeyPath& p, const TensorView& t) {
    out().pad_to(alignment);
    const std::uint64_t off = out().position();
    std::uint32_t crc;
    std::uint64_t stored = t.nbytes;
    std::string codec = "raw";
    if (codec_ == detail::Codec::zlib && t.nbytes > 0) {
      auto packed = detail::zlib_encode(t, level_);
      if (packed.size() < t.nbytes) {  // keep raw when compression does not help
        crc = detail::crc32(packed);
        stored = packed.size();
        codec = "zlib";
        out().write(packed);
      } else {
        crc = detail::crc32(t.bytes());
        out().write(t.bytes());
      }
    } else {
      // The lane checksums the tensor while this thread writes it: the save costs the larger
      // of the two, not their sum (the bytes are the caller's and stay put meanwhile).
      lane_.start(0, t.bytes());
      try {
        out().write(t.bytes());
      } catch (...) {
        (void)lane_.wait();
        throw;
      }
      crc = lane_.wait();
    }
    Value e{{"key", p.keys()}, {"dtype", name(t.dtype)}, {"shape", t.shape}, {"offset", off},
            {"nbytes", t.nbytes}, {"stored_nbytes", stored}, {"codec", codec}, {"crc32", crc}};
    tree_.tensor(p, table_.size());
    table_.push_back(std::move(e));
  }
  void commit() {
    Value footer{{"format", "ckpt"}, {"version", native_format_version}, {"library", version_string},
                 {"alignment", alignment}, {"tensors", std::move(table_)}, {"tree", std::move(tree_.root())}};
    const std::string text = footer.dump();
    const std::uint64_t foff = out().position();
    out().write_string(text);
    std::array<std::byte, trailer_size> tr{};
    detail::store_le<std::uint64_t>(tr.data(), foff);
    detail::store_le<std::uint64_t>(tr.data() + 8, text.size());
    detail::store_le<std::uint32_t>(tr.data() + 16, detail::crc32(std::as_bytes(std::span(text))));
    detail::store_le<std::uint32_t>(tr.data() + 20, native_format_version);
    std::memcpy(tr.data() + 24, end_magic.data(), end_magic.size());
    out().write(tr);
    file_.commit();
  }

 private:
  io::Writer& out() { return file_.writer(); }
  io::AtomicFile file_;
  detail::Codec codec_;
  int level_;
  detail::SkeletonBuilder tree_;
  Value table_ = Value::array();
  detail::Lane lane_;
};

/// Reads a .ckpt file (or one in memory). The constructor validates the trailer, footer and
/// tensor table; data is read per entry (eager, into caller memory or an owning tensor) or
/// viewed in a mapping. With LoadOptions::strict (the default) a footer member this version
/// does not know is an error; without, it is skipped.
class InputArchive {
 public:
  InputArchive(const std::filesystem::path& path, const LoadOptions& opts = {}) : InputArchive(io::Source::file(path), opts) {}
  explicit InputArchive(const io::Source& src, const LoadOptions& opts = {}) try : path_(src.path()), opts_(opts), file_(src) {
    size_ = file_.size();
    if (size_ < header_size + trailer_size) throw format_error("file too small for a .ckpt (" + std::to_string(size_) + " bytes)", path_, 0);
    std::array<std::byte, header_size> h{};
    file_.pread_all(h, 0);
    if (std::memcmp(h.data(), magic.data(), magic.size()) != 0) throw format_error("not a .ckpt file (bad magic)", path_, 0);
    const auto ver = detail::load_le<std::uint32_t>(h.data() + 8);
    if (ver != native_format_version) throw unsupported_error("unsupported .ckpt format version " + std::to_string(ver) + " (this library reads " + std::to_string(native_format_version) + ")", path_);
    std::array<std::byte, trailer_size> tr{};
    file_.pread_all(tr, size_ - trailer_size);
    if (std::memcmp(tr.data() + 24, end_magic.data(), end_magic.size()) != 0) throw format_error("bad trailer magic (file truncated or not a .ckpt)", path_, size_ - 8);
    footer_off_ = detail::load_le<std::uint64_t>(tr.data());
    const auto flen = detail::load_le<std::uint64_t>(tr.data() + 8);
    const auto fcrc = detail::load_le<std::uint32_t>(tr.data() + 16);
    if (flen > max_footer_bytes || footer_off_ < header_size || footer_off_ > size_ - trailer_size || flen != size_ - trailer_size - footer_off_)
      throw format_error("footer location out of range", path_, size_ - trailer_size, "", "footer ending at " + std::to_string(size_ - trailer_size), "offset " + std::to_string(footer_off_) + " + length " + std::to_string(flen));
    std::string text(static_cast<std::size_t>(flen), '\0');
    file_.pread_all(std::as_writable_bytes(std::span(text)), footer_off_);
    const auto got = detail::crc32(std::as_bytes(std::span(text)));
    if (detail::enforce_checksums && got != fcrc) throw corrupt_error("footer checksum mismatch", path_, "", detail::crc_hex(fcrc), detail::crc_hex(got));
    Value footer = detail::parse_json_checked(text, "invalid footer", path_, footer_off_, {.shape = &footer_shape(), .strict = opts_.strict});
    parse_table(footer);
    if (auto t = footer.find("tree"); t != footer.end()) skeleton_ = std::move(*t);
    if (opts_.mmap) mapping_ = file_.map();
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(src.path());
  }

  const std::vector<EntryInfo>& entries() const { return entries_; }
  Value skeleton() const { return skeleton_; }
  const std::string& path() const { return path_; }

  /// Read entry i's decoded bytes into dst (dst.size() must equal nbytes); verifies the CRC
  /// when the options ask for it (default for eager loads).
  void read_into(std::size_t i, std::span<std::byte> dst) {
    const auto& e = entries_.at(i);
    if (dst.size() != e.nbytes) throw mismatch_error("destination size differs", e.path.str(), std::to_string(e.nbytes) + " bytes", std::to_string(dst.size()) + " bytes", path_);
    if (codecs_[i] == detail::Codec::raw) {
      // Copy (and checksum) piece by piece, half on the lane (see Lane::split).
      const std::byte* mapped = mapping_ ? mapping_->data() + offsets_[i] : nullptr;
      const auto fill = [&](int, std::uint64_t at, std::size_t n) {
        const auto part = dst.subspan(static_cast<std::size_t>(at), n);
        if (mapped) std::memcpy(part.data(), mapped + at, n);
        else file_.pread_all(part, offsets_[i] + at);
        return std::span<const std::byte>(part);
      };
      if (opts_.verify_checksums()) check_crc_value(i, lane_.split(dst.size(), fill));
      else lane_.split_fill(dst.size(), fill);
    } else {
      auto packed = detail::new_buffer(e.stored_nbytes, path_, e.path.str());
      file_.pread_all(packed, offsets_[i]);
      check_crc(i, packed);  // always: a corrupt zlib stream must not be decoded blindly
      detail::zlib_decode(packed, e, dst, path_);
    }
  }
  /// Entry i as a tensor: a view into the shared mapping (mmap, raw codec) or an owning copy.
  Tensor read_tensor(std::size_t i) {
    const auto& e = entries_.at(i);
    if (mapping_ && codecs_[i] == detail::Codec::raw) {
      TensorView v{e.dtype, e.shape, mapping_->data() + offsets_[i], static_cast<std::size_t>(e.nbytes)};
      if (opts_.verify_checksums())  // page faults and checksum on both threads
        check_crc_value(i, lane_.split(v.nbytes, [&](int, std::uint64_t at, std::size_t n) { return v.bytes().subspan(static_cast<std::size_t>(at), n); }));
      return Tensor::view_of(v, mapping_);
    }
    Tensor t = detail::new_tensor(e.dtype, e.shape, path_, e.path.str());
    read_into(i, {t.mutable_data(), t.nbytes()});
    return t;
  }
  /// Check entry i's stored bytes against its CRC-32 without keeping them.
  void verify_entry(std::size_t i) {
    const auto& e = entries_.at(i);
    // A piece-sized buffer per side of the split.
    const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(e.stored_nbytes, detail::Lane::piece_bytes));
    std::vector<std::byte> buf(2 * piece);
    const auto c = lane_.split(e.stored_nbytes, [&](int side, std::uint64_t at, std::size_t n) {
      const std::span<std::byte> part(buf.data() + static_cast<std::size_t>(side) * piece, n);
      file_.pread_all(part, offsets_[i] + at);
      return std::span<const std::byte>(part);
    });
    check_crc_value(i, c);
  }
  std::uint64_t offset(std::size_t i) const { return offsets_.at(i); }

 private:
  void check_crc(std::size_t i, std::span<const std::byte> stored) const { check_crc_value(i, detail::crc32(stored)); }
  void check_crc_value(std::size_t i, std::uint32_t c) const {
    if (detail::enforce_checksums && c != crcs_[i]) throw corrupt_error("checksum mismatch", path_, entries_[i].path.str(), detail::crc_hex(crcs_[i]), detail::crc_hex(c));
  }
  void parse_table(const Value& footer) {
    auto bad = [&](const std::string& what, const std::string& key = {}) { return format_error("invalid footer: " + what, path_, footer_off_, key); };
    if (!footer.is_object() || detail::string_member(footer, "format") != "ckpt") throw bad("not a ckpt footer");
    auto t = footer.find("tensors");
    if (t == footer.end() || !t->is_array()) throw bad("missing tensor table");
    for (const auto& j : *t) {
      EntryInfo e;
      try {
        if (!j.is_object()) throw bad("entry is not an object");
        for (const auto& k : j.at("key")) e.path = e.path / k.get<std::string>();
        const auto key = e.path.str();
        auto dt = dtype_from_name(j.at("dtype").get<std::string>());
        if (!dt) throw bad("unknown dtype '" + j.at("dtype").get<std::string>() + "'", key);
        e.dtype = *dt;
        const auto shape = detail::shape_of(j.at("shape"));
        if (!shape) throw format_error("invalid footer: shape is not a list of integers", path_, footer_off_, key, "a list of integers", detail::json_excerpt(j.at("shape")));
        e.shape = *shape;
        auto integer = [&]<class I>(const char* field, I) {
          const auto& v = j.at(field);
          const auto x = detail::integer_as<I>(v);
          if (!x) throw format_error(std::string("invalid footer: '") + field + "' is not an integer in range", path_, footer_off_, key, "an integer", detail::json_excerpt(v));
          return *x;
        };
        e.nbytes = integer("nbytes", std::uint64_t{});
        e.stored_nbytes = integer("stored_nbytes", std::uint64_t{});
        e.codec = j.at("codec").get<std::string>();
        const auto off = integer("offset", std::uint64_t{});
        const auto crc = integer("crc32", std::uint32_t{});
        auto nb = checked_nbytes(e.dtype, e.shape);
        if (!nb || *nb != e.nbytes) throw format_error("invalid footer: tensor size does not match its shape", path_, footer_off_, key, nb ? std::to_string(*nb) + " bytes" : "a valid shape", std::to_string(e.nbytes) + " bytes");
        if (e.codec != "raw" && e.codec != "zlib") throw bad("unknown codec '" + e.codec + "'", key);
        auto codec = detail::codec_from_name(e.codec, path_);
        if (codec == detail::Codec::raw && e.stored_nbytes != e.nbytes) throw bad("raw entry with stored size different from its size", key);
        if (codec == detail::Codec::zlib && !detail::inflatable(e.stored_nbytes, e.nbytes))
          throw format_error("invalid footer: zlib entry declares more than its stored bytes can decode to (deflate's ratio is at most 1032:1)", path_, footer_off_, key,
                             "at most " + std::to_string(detail::max_inflated_bytes(e.stored_nbytes)) + " bytes from " + std::to_string(e.stored_nbytes), std::to_string(e.nbytes) + " bytes");
        if (off % alignment || off < header_size || off > footer_off_ || e.stored_nbytes > footer_off_ - off)
          throw format_error("invalid footer: tensor data out of range", path_, footer_off_, key, "64-aligned range inside [64, " + std::to_string(footer_off_) + ")", "offset " + std::to_string(off) + " size " + std::to_string(e.stored_nbytes));
        offsets_.push_back(off);
        crcs_.push_back(crc);
        codecs_.push_back(codec);
      } catch (const nlohmann::json::exception& x) {
        throw bad(std::string("malformed entry: ") + x.what(), e.path.str());
      }
      entries_.push_back(std::move(e));
    }
    // No two tensors may overlap.
    std::vector<std::size_t> order;  // entries with bytes (empty tensors occupy nothing)
    for (std::size_t i = 0; i < entries_.size(); ++i)
      if (entries_[i].stored_nbytes) order.push_back(i);
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return offsets_[a] < offsets_[b]; });
    for (std::size_t k = 1; k < order.size(); ++k) {
      const auto a = order[k - 1], b = order[k];
      if (offsets_[a] + entries_[a].stored_nbytes > offsets_[b]) throw bad("tensor data overlaps '" + entries_[a].path.str() + "'", entries_[b].path.str());
    }
  }

  std::string path_;
  LoadOptions opts_;
  io::Source file_;
  std::uint64_t size_ = 0, footer_off_ = 0;
  std::vector<EntryInfo> entries_;
  std::vector<std::uint64_t> offsets_;
  std::vector<std::uint32_t> crcs_;
  std::vector<detail::Codec> codecs_;
  Value skeleton_;
  std::shared_ptr<const io::Mapping> mapping_;
  detail::Lane lane_;
};
}  // namespace native

template <>
struct archive_traits<native_format> {
  static constexpr std::string_view name = "native";
  static constexpr std::array<std::string_view, 1> extensions{".ckpt"};
  static constexpr ArchiveCaps caps{.metadata_tree = true, .compression = true, .zero_copy_read = true,
                                    .streaming_write = true, .checksums = true, .directory = false};
  static bool sniff(std::span<const std::byte> head) {
    return head.size() >= native::magic.size() && std::memcmp(head.data(), native::magic.data(), native::magic.size()) == 0;
  }
  using output_archive = native::OutputArchive;
  using input_archive = native::InputArchive;
};

}  // namespace ckpt
