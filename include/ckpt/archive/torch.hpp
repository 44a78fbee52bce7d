// ckpt/archive/torch.hpp — the PyTorch backend: reads and writes torch.save files (`.pt`,
// `.pth`, and `.bin` when it is a torch zip) without libtorch and without running any pickle
// code. A torch.save file is a zip with one top-level folder holding `data.pkl` (the pickled
// object; tensors are persistent ids naming storage records), `data/<key>` (each storage's raw
// bytes), `version`, and in torch >= 2.0 `byteorder`. Reading: the restricted unpickler with
// torch's hooks (detail/torch_pickle.hpp) yields the tree and strided tensor views, which are
// bounds-checked against their storages and copied out contiguous (big-endian storages are
// swapped); the pre-1.6 non-zip format is read too. Writing: storages are streamed into the zip
// 64-byte aligned as they arrive, then `data.pkl` (protocol 2), `byteorder` and `version`, all
// through an AtomicFile. The mapping between Python objects and the StateDict is described at
// the top of detail/torch_pickle.hpp.
#pragma once

#include <array>          // extensions, magic
#include <cstring>        // memcpy
#include <filesystem>     // paths
#include <memory>         // legacy mapping
#include <optional>       // zip reader
#include <span>           // bytes
#include <string>         // names
#include <unordered_map>  // tied storages
#include <unordered_set>  // verified records
#include <vector>         // entries

#include "../concepts.hpp"             // archive concepts, EntryInfo
#include "../detail/crc32.hpp"         // tied-storage detection on write
#include "../detail/endian.hpp"        // zip magic, legacy sizes, byte swaps
#include "../detail/pickle_tree.hpp"   // writing torch's pickle
#include "../detail/torch_pickle.hpp"  // reading torch's pickle
#include "../detail/unpickle.hpp"      // restricted unpickler
#include "../detail/zip.hpp"           // the container
#include "../detail/limits.hpp"        // allocations sized by the file
#include "../io/file.hpp"              // AtomicFile
#include "../io/source.hpp"            // Source: the file or bytes in memory; legacy files are read through its mapping

namespace ckpt {

/// Format tag of the PyTorch torch.save backend.
struct torch_format {};

namespace torchfmt {
/// Largest data.pkl the reader accepts (a torch pickle costs ~100 bytes per tensor).
inline constexpr std::uint64_t max_pickle_bytes = std::uint64_t{1} << 28;
/// The most bytes a file of `file_size` bytes may add by expanded views (stride 0, more elements
/// than their storage) when they are copied out: 16 MiB, plus 16 times the file.
constexpr std::uint64_t max_expanded_bytes(std::uint64_t file_size) { return (std::uint64_t{16} << 20) + 16 * file_size; }
/// torch's legacy MAGIC_NUMBER 0x1950a86a20f9469cfc6c as LONG1 payload bytes.
inline constexpr std::array<unsigned char, 10> legacy_magic = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
/// The folder our files put everything in (torch.save names it after the file).
inline constexpr std::string_view folder = "archive";
inline constexpr std::size_t storage_alignment = 64;

/// Where a legacy file's first pickle (the magic number) ends, or 0 when `head` has none.
inline std::size_t legacy_magic_end(std::span<const std::byte> head) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(head[k]); };
  if (head.size() < 2 || at(0) != 0x80 || at(1) < 2 || at(1) > 5) return 0;
  std::size_t i = 2;
  if (head.size() > i && at(i) == 0x95) i += 9;  // FRAME (protocol 4+)
  if (head.size() < i + 13 || at(i) != 0x8a || at(i + 1) != 10) return 0;
  for (std::size_t k = 0; k < legacy_magic.size(); ++k)
    if (at(i + 2 + k) != legacy_magic[k]) return 0;
  return at(i + 12) == '.' ? i + 13 : 0;
}

/// Is `name` (a zip member name) one that torch.save puts in its folder?
inline bool is_torch_member(std::string_view name) {
  const auto slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  const auto rest = name.substr(slash + 1);
  return rest == "data.pkl" || rest.starts_with("data/") || rest == "byteorder" || rest == "version" ||
         rest.starts_with(".data/") || rest == ".format_version" || rest == ".storage_alignment";
}

/// Writes a torch.save-compatible zip through an AtomicFile (nothing appears until commit()).
class OutputArchive {
 public:
  OutputArchive(const std::filesystem::path& path, const SaveOptions& opts = {})
      : path_(path.string()), file_(path, opts.fsync), zip_(file_.writer()), tree_(path_), level_(opts.compression_level) {
    if (opts.codec == "zlib") deflate_ = true;
    else if (opts.codec != "raw") throw unsupported_error("unknown codec '" + opts.codec + "' for .pt (raw or zlib)", path_);
  }

  void begin_group(const KeyPath& p, Container c) { tree_.begin_group(p, c); }
  void end_group(const KeyPath&) {}
  void write_value(const KeyPath& p, const Value& v) { tree_.value(p, v); }
  /// Each tensor gets its own storage record, except that a tensor with the same bytes at the
  /// same address as an earlier one (a tied weight) shares the earlier one's, as in torch.
  void write_tensor(const KeyPath& p, const TensorView& t) {
    const std::uint32_t crc = detail::crc32(t.bytes());
    const std::string id = std::to_string(reinterpret_cast<std::uintptr_t>(t.data)) + ":" + std::to_string(t.nbytes) + ":" +
                           std::string(name(t.dtype)) + ":" + std::to_string(crc);
    auto [it, fresh] = tied_.try_emplace(id, std::to_string(tied_.size()));
    if (fresh)
      zip_.add(std::string(folder) + "/data/" + it->second, t.bytes(), deflate_ && t.nbytes > 0, storage_alignment, level_);
    tree_.tensor(p, t.dtype, t.shape, it->second);
  }
  void commit() {
    const auto pkl = tree_.pickle();
    const std::string f(folder);
    zip_.add(f + "/data.pkl", pkl);
    zip_.add(f + "/byteorder", std::as_bytes(std::span(std::string_view("little"))));
    zip_.add(f + "/version", std::as_bytes(std::span(std::string_view("3\n"))));
    zip_.finish();
    file_.commit();
  }
  /// After commit(): records written as plain dicts, not as the objects they stand for
  /// ("key (class)"; see detail/pickle_tree.hpp).
  const std::vector<std::string>& dropped_objects() const { return tree_.dropped(); }

 private:
  std::string path_;
  io::AtomicFile file_;
  detail::zip::Writer zip_;
  detail::torch_pickle::PickleTree tree_;
  bool deflate_ = false;
  int level_;
  std::unordered_map<std::string, std::string> tied_;  // address:size:dtype:crc -> storage key
};

/// Reads a torch.save file (zip, or the legacy pre-1.6 format), or one in memory. The
/// constructor unpickles and validates everything; tensor data is read per entry.
class InputArchive {
 public:
  InputArchive(const std::filesystem::path& path, const LoadOptions& opts = {}) : InputArchive(io::Source::file(path), opts) {}
  explicit InputArchive(const io::Source& src, const LoadOptions& opts = {}) try : path_(src.path()), opts_(opts), source_(src) {
    std::array<std::byte, 32> head{};
    file_size_ = source_.size();
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(head.size(), file_size_));
    source_.pread_all({head.data(), n}, 0);
    if (auto end = legacy_magic_end({head.data(), n})) open_legacy(end);
    else if (n >= 4 && detail::load_le<std::uint32_t>(head.data()) == detail::zip::local_sig) open_zip();
    else throw format_error("not a torch.save file (neither a zip archive nor torch's legacy format)", path_, 0);
  } catch (const std::bad_alloc&) {
    throw detail::out_of_memory(src.path());
  }

  const std::vector<EntryInfo>& entries() const { return entries_; }
  Value skeleton() const { return skeleton_; }
  const std::string& path() const { return path_; }
  /// True for files in the pre-1.6 (non-zip) format.
  bool legacy() const { return !zip_; }

  /// Entry i's elements, contiguous and little-endian, into dst (dst.size() == nbytes).
  void read_into(std::size_t i, std::span<std::byte> dst) {
    const auto& e = entries_.at(i);
    if (dst.size() != e.nbytes) throw mismatch_error("destination size differs", e.path.str(), std::to_string(e.nbytes) + " bytes", std::to_string(dst.size()) + " bytes", path_);
    if (e.nbytes == 0) return;
    const auto& t = records_[i];
    const auto es = element_size(t.dtype);
    const std::uint64_t start = storages_[t.storage].byte_offset + t.offset * es;
    if (contiguous(t)) {
      read_storage(t.storage, start, dst);
    } else {  // read the span of the storage the view touches, then gather
      auto buf = detail::new_buffer((last_element(t) - t.offset + 1) * es, path_, e.path.str());
      read_storage(t.storage, start, buf);
      gather(buf.data(), t, dst.data());
    }
    const auto& s = storages_[t.storage];
    if (s.inline_bytes ? s.big_endian : big_endian_) detail::byteswap_elements(dst, t.dtype == DType::c64 || t.dtype == DType::c128 ? es / 2 : es);
  }
  /// Entry i as an owning tensor. Entries that are the same view of the same storage (tied
  /// weights) come back as one tensor — copies sharing their bytes, as torch shares them.
  Tensor read_tensor(std::size_t i) {
    const auto& e = entries_.at(i);
    const auto& r = records_[i];
    std::string view;
    if (storage_uses_[r.storage] > 1) {
      view = std::to_string(r.storage) + ":" + std::string(name(r.dtype)) + ":" + std::to_string(r.offset) + ":" + shape_string(r.shape) + ":" + shape_string(r.stride);
      if (auto it = tied_.find(view); it != tied_.end()) return it->second;
    }
    Tensor t = detail::new_tensor(e.dtype, e.shape, path_, e.path.str());  // read_into writes every byte
    read_into(i, {t.mutable_data(), t.nbytes()});
    if (!view.empty()) tied_.emplace(std::move(view), t);
    return t;
  }

 private:
  struct Source {
    const detail::zip::Entry* entry = nullptr;  // zip: the storage record
    std::uint64_t offset = 0;                   // legacy: where the root storage's bytes start
  };

  void open_zip() {
    zip_.emplace(source_);
    std::string prefix;
    for (const auto& e : zip_->entries()) {
      const auto slash = e.name.find('/');
      if (slash == std::string::npos || slash == 0 || e.name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
      if (!prefix.empty()) throw format_error("more than one data.pkl (two top-level folders)", path_, format_error::no_offset, "", prefix + "data.pkl", e.name);
      prefix = e.name.substr(0, slash + 1);
    }
    if (prefix.empty()) throw format_error("not a torch.save archive: no '<folder>/data.pkl' member", path_, format_error::no_offset);
    if (zip_->find(prefix + "constants.pkl")) throw unsupported_error("a TorchScript archive (torch.jit.save) is not a torch.save checkpoint", path_);
    if (const auto* e = zip_->find(prefix + "byteorder")) {
      if (e->uncompressed_size > 16) throw format_error("byteorder record too long", path_, e->data_offset);
      const auto b = zip_->read(*e);
      const std::string s(reinterpret_cast<const char*>(b.data()), b.size());
      if (s == "big") big_endian_ = true;
      else if (s != "little") throw format_error("invalid byteorder record", path_, e->data_offset, "", "little or big", s);
    }
    const auto* pk = zip_->find(prefix + "data.pkl");
    if (pk->uncompressed_size > max_pickle_bytes)
      throw format_error("data.pkl too large", path_, pk->data_offset, "", "at most " + std::to_string(max_pickle_bytes) + " bytes", std::to_string(pk->uncompressed_size) + " bytes");
    const auto bytes = zip_->read(*pk);
    detail::torch_pickle::Hooks hooks(false, opts_.inert_objects);
    detail::pickle::Unpickler u(bytes, path_, hooks, {}, pk->method == 0 ? pk->data_offset : 0);
    const detail::pickle::Object* root = u.load();
    for (const auto& s : hooks.storages) {
      if (s.inline_bytes) {  // a NumPy array: its bytes are in the pickle
        sources_.push_back({});
        continue;
      }
      const std::string name = prefix + "data/" + s.key;
      const auto* e = zip_->find(name);
      if (!e) throw format_error("storage record missing", path_, format_error::no_offset, "", name, "no such member");
      const auto declared = hooks.root_sizes.at(s.key);
      if (e->uncompressed_size != declared)
        throw format_error("storage record size differs from the size data.pkl declares", path_, e->data_offset, "", name + ": " + std::to_string(declared) + " bytes", std::to_string(e->uncompressed_size) + " bytes");
      sources_.push_back({e, 0});
    }
    finish(hooks, *root);
  }

  // Pre-1.6 torch.save: pickles of the magic number, protocol version (1001), sys_info, the
  // object, and the sorted storage keys; then each storage as int64 numel + raw bytes.
  void open_legacy(std::size_t magic_end) {
    mapping_ = source_.map();
    const auto all = mapping_->bytes();
    detail::torch_pickle::Hooks hooks(true, opts_.inert_objects);
    detail::pickle::Unpickler u(all.subspan(magic_end), path_, hooks, {}, magic_end);
    using T = detail::pickle::Object::Type;
    const auto* proto = u.load();
    if (!proto->is(T::integer) || proto->i != 1001)
      throw unsupported_error("legacy torch.save protocol version " + (proto->is(T::integer) ? std::to_string(proto->i) : "?") + " (this reader knows 1001)", path_);
    if (!u.load()->is(T::dict)) throw format_error("legacy torch.save: sys_info is not a dict", path_, magic_end + u.position());
    const auto* root = u.load();
    const auto* keys = u.load();
    if (!keys->is(T::list)) throw format_error("legacy torch.save: storage key list missing", path_, magic_end + u.position());
    std::unordered_map<std::string, DType> key_dtype;
    for (const auto& s : hooks.storages)
      if (!s.inline_bytes) key_dtype.emplace(s.key, s.dtype);
    std::unordered_map<std::string, std::uint64_t> where;
    std::uint64_t pos = magic_end + u.position();
    for (const auto* k : keys->items) {  // storage data are little-endian whatever sys_info says
      if (!k->is(T::string)) throw format_error("legacy torch.save: storage key is not a str", path_, pos);
      auto dt = key_dtype.find(k->s);
      if (dt == key_dtype.end()) throw format_error("legacy torch.save: data for a storage the pickle never uses", path_, pos, "", "a key in the pickle", k->s);
      if (all.size() - pos < 8) throw format_error("legacy torch.save: truncated storage data", path_, pos);
      const auto numel = detail::load_le<std::int64_t>(all.data() + pos);
      const auto es = element_size(dt->second);
      const auto declared = hooks.root_sizes.at(k->s);
      if (numel < 0 || static_cast<std::uint64_t>(numel) > declared / es || static_cast<std::uint64_t>(numel) * es != declared)
        throw format_error("legacy torch.save: storage size differs from the size the pickle declares", path_, pos, "", std::to_string(declared / es) + " elements", std::to_string(numel));
      if (declared > all.size() - pos - 8) throw format_error("legacy torch.save: storage data past the end of the file", path_, pos, "", std::to_string(declared) + " bytes", std::to_string(all.size() - pos - 8));
      where[k->s] = pos + 8;
      pos += 8 + declared;
    }
    for (const auto& s : hooks.storages) {
      if (s.inline_bytes) {
        sources_.push_back({});
        continue;
      }
      auto it = where.find(s.key);
      if (it == where.end()) throw format_error("legacy torch.save: no data for storage '" + s.key + "'", path_, pos);
      sources_.push_back({nullptr, it->second});
    }
    finish(hooks, *root);
  }

  void finish(detail::torch_pickle::Hooks& hooks, const detail::pickle::Object& root) {
    detail::torch_pickle::SkeletonFromPickle conv(hooks, path_);
    skeleton_ = conv.convert(root);
    entries_ = std::move(conv.entries);
    storages_ = std::move(hooks.storages);
    storage_uses_.assign(storages_.size(), 0);
    for (std::size_t k = 0; k < entries_.size(); ++k) {
      records_.push_back(hooks.tensors[conv.entry_tensor[k]]);
      ++storage_uses_[records_.back().storage];
      check(k);
      const auto* member = sources_[records_[k].storage].entry;
      if (member && member->method == 8) entries_[k].codec = "deflate";
    }
  }
  // A view must lie inside its storage. One with more elements than its storage (an expand()ed
  // tensor: stride 0) is materialized like any other view, torch.load reading it too; since a
  // few bytes of pickle can claim terabytes that way, what all such views add is bounded by
  // what the file can justify: max_expanded_bytes(file size).
  void check(std::size_t k) {
    const auto& t = records_[k];
    const auto& s = storages_[t.storage];
    const auto& e = entries_[k];
    const auto es = element_size(t.dtype);
    const std::uint64_t avail = s.nbytes / es;
    if (e.nbytes == 0) {
      if (t.offset > avail) throw format_error("empty tensor's offset past the end of its storage", path_, format_error::no_offset, e.path.str(), "at most " + std::to_string(avail), std::to_string(t.offset));
      return;
    }
    const auto last = last_element(t);
    if (last >= avail)
      throw format_error("tensor reaches past the end of its storage", path_, format_error::no_offset, e.path.str(), "elements below " + std::to_string(avail), "element " + (last == ~std::uint64_t{0} ? std::string("beyond 2^64") : std::to_string(last)));
    if (e.nbytes > s.nbytes) {
      expanded_bytes_ += e.nbytes - s.nbytes;
      if (expanded_bytes_ > max_expanded_bytes(file_size_))
        throw format_error("expanded views (stride 0, more elements than their storage) add more bytes than the file can justify", path_, format_error::no_offset, e.path.str(),
                           "at most " + std::to_string(max_expanded_bytes(file_size_)) + " bytes beyond their storages", std::to_string(expanded_bytes_));
    }
  }
  // Largest element index a non-empty view touches (~0 on overflow).
  static std::uint64_t last_element(const detail::torch_pickle::TensorRecord& t) {
    std::uint64_t last = t.offset;
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      std::uint64_t m;
      if (__builtin_mul_overflow(static_cast<std::uint64_t>(t.shape[d] - 1), static_cast<std::uint64_t>(t.stride[d]), &m) || __builtin_add_overflow(last, m, &last))
        return ~std::uint64_t{0};
    }
    return last;
  }
  static bool contiguous(const detail::torch_pickle::TensorRecord& t) {
    std::int64_t want = 1;
    for (std::size_t d = t.shape.size(); d-- > 0;) {
      if (t.shape[d] != 1 && t.stride[d] != want) return false;
      want *= t.shape[d];
    }
    return true;
  }
  // Copy view t out of `src` (which starts at the view's first element) into contiguous dst.
  static void gather(const std::byte* src, const detail::torch_pickle::TensorRecord& t, std::byte* dst) {
    const std::size_t es = element_size(t.dtype), nd = t.shape.size();
    const auto inner = static_cast<std::size_t>(t.shape[nd - 1]);
    const auto istride = static_cast<std::size_t>(t.stride[nd - 1]);
    std::vector<std::int64_t> idx(nd, 0);
    for (;;) {
      std::size_t base = 0;
      for (std::size_t d = 0; d + 1 < nd; ++d) base += static_cast<std::size_t>(idx[d] * t.stride[d]);
      if (istride == 1) {
        std::memcpy(dst, src + base * es, inner * es);
        dst += inner * es;
      } else {
        for (std::size_t j = 0; j < inner; ++j, dst += es) std::memcpy(dst, src + (base + j * istride) * es, es);
      }
      std::size_t d = nd - 1;
      while (d-- > 0) {
        if (++idx[d] < t.shape[d]) break;
        idx[d] = 0;
      }
      if (d == static_cast<std::size_t>(-1)) return;
    }
  }
  // Bytes [off, off + dst.size()) of storage si's root record. Each zip record's CRC-32 is
  // checked the first time it is read (when checksums are on).
  void read_storage(std::size_t si, std::uint64_t off, std::span<std::byte> dst) {
    const Source& src = sources_[si];
    if (const auto& in = storages_[si].inline_bytes) {  // check() keeps the view inside
      std::memcpy(dst.data(), in->data() + off, dst.size());
      return;
    }
    if (!src.entry) {
      std::memcpy(dst.data(), mapping_->data() + src.offset + off, dst.size());
      return;
    }
    const bool verify = opts_.verify_checksums() && !verified_.count(src.entry);
    zip_->read_range(*src.entry, off, dst, verify);
    if (verify) verified_.insert(src.entry);
  }

  std::string path_;
  LoadOptions opts_;
  io::Source source_;
  std::optional<detail::zip::Reader> zip_;
  std::shared_ptr<const io::Mapping> mapping_;
  bool big_endian_ = false;
  std::vector<EntryInfo> entries_;
  std::vector<detail::torch_pickle::TensorRecord> records_;  // per entry
  std::vector<detail::torch_pickle::Storage> storages_;
  std::vector<Source> sources_;  // per storage
  std::unordered_set<const detail::zip::Entry*> verified_;
  std::vector<std::size_t> storage_uses_;              // entries per storage
  std::uint64_t file_size_ = 0;
  std::uint64_t expanded_bytes_ = 0;                   // what expanded views add (check())
  std::unordered_map<std::string, Tensor> tied_;       // view signature -> tensor already read
  Value skeleton_;
};
}  // namespace torchfmt

template <>
struct archive_traits<torch_format> {
  static constexpr std::string_view name = "pt";
  static constexpr std::array<std::string_view, 2> extensions{".pt", ".pth"};
  static constexpr ArchiveCaps caps{.metadata_tree = true, .compression = true, .zero_copy_read = false,
                                    .streaming_write = true, .checksums = true, .directory = false};
  /// A zip whose first member sits in a folder under a name torch.save uses, or a legacy file.
  static bool sniff(std::span<const std::byte> head) {
    if (torchfmt::legacy_magic_end(head)) return true;
    if (head.size() < 30 || detail::load_le<std::uint32_t>(head.data()) != detail::zip::local_sig) return false;
    const auto len = detail::load_le<std::uint16_t>(head.data() + 26);
    if (head.size() < 30u + len) return false;
    return torchfmt::is_torch_member({reinterpret_cast<const char*>(head.data()) + 30, len});
  }
  using output_archive = torchfmt::OutputArchive;
  using input_archive = torchfmt::InputArchive;
};

}  // namespace ckpt
