// ckpt/detail/zip.hpp — a small, strict zip reader and a streaming zip writer, shared by the
// NumPy .npz backend and the PyTorch .pt backend. Stored and deflated members, zip64 (sizes
// and offsets over 4 GiB, more than 65535 members), data descriptors, and members whose data
// starts at an aligned offset (padding in an extra field, id 0xD935 as Android's zipalign).
// The reader trusts nothing: every offset and size must lie inside the file, members may not
// overlap, names may not climb out of a directory, and every read is checked against the
// member's CRC-32. APPNOTE.TXT (PKWARE) is the spec; only single-disk, unencrypted archives.
#pragma once

#include <zlib.h>  // raw deflate / inflate

#include <algorithm>      // std::sort, std::min
#include <array>          // fixed header buffers
#include <cstddef>        // std::byte
#include <cstdint>        // header fields
#include <cstring>        // std::memcmp
#include <filesystem>     // paths
#include <initializer_list>  // Writer::add_parts
#include <limits>         // field limits
#include <span>           // byte spans
#include <string>         // names
#include <string_view>    // names
#include <unordered_map>  // name -> entry
#include <unordered_set>  // duplicate names on write
#include <vector>         // entries, buffers

#include "../error.hpp"      // format_error, corrupt_error, unsupported_error
#include "../io/file.hpp"    // Writer (writer)
#include "../io/source.hpp"  // Source (reader): a file or bytes in memory
#include "crc32.hpp"         // member checksums
#include "endian.hpp"        // little-endian fields
#include "limits.hpp"        // deflate's maximum ratio

namespace ckpt::detail::zip {

inline constexpr std::uint32_t local_sig = 0x04034b50, central_sig = 0x02014b50, eocd_sig = 0x06054b50;
inline constexpr std::uint32_t zip64_eocd_sig = 0x06064b50, zip64_locator_sig = 0x07064b50, descriptor_sig = 0x08074b50;
inline constexpr std::uint16_t zip64_extra_id = 0x0001;
/// Extra field that pads a local header so the member's data is aligned (as Android's zipalign).
inline constexpr std::uint16_t align_extra_id = 0xD935;
inline constexpr std::uint32_t max32 = 0xffffffffu;
inline constexpr std::uint16_t max16 = 0xffffu;
/// Largest central directory a Reader accepts (64 bytes per member: ~16 million members).
inline constexpr std::uint64_t max_central_dir_bytes = std::uint64_t{1} << 30;
/// Deflate cannot expand data more than 1032:1; a member declaring more is rejected, which
/// bounds what read() allocates by 1032 × the file size.
using detail::max_deflate_ratio;

/// One member as the central directory describes it.
struct Entry {
  std::string name;
  std::uint16_t method = 0;            ///< 0 stored, 8 deflated
  std::uint32_t crc32 = 0;
  std::uint64_t compressed_size = 0, uncompressed_size = 0;
  std::uint64_t local_header_offset = 0;
  std::uint64_t data_offset = 0;       ///< absolute offset of the member's data (after the local header)
};

/// Why `name` may not be a member name, or "" when it may: empty, NUL bytes, an absolute path,
/// a drive letter, or a ".." component.
inline std::string bad_name_reason(std::string_view name) {
  if (name.empty()) return "empty name";
  if (name.find('\0') != std::string_view::npos) return "NUL byte in name";
  if (name[0] == '/' || name[0] == '\\') return "absolute path";
  if (name.size() >= 2 && name[1] == ':') return "drive letter";
  std::size_t start = 0;
  while (start <= name.size()) {
    const auto end = name.find_first_of("/\\", start);
    const auto part = name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part == "..") return "'..' component";
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return {};
}

/// Reads a zip file (or a zip in memory) by offset; entries are validated when it is opened.
class Reader {
 public:
  /// Open and validate `path`. Throws io_error when it cannot be read, format_error when it
  /// is not a valid zip, unsupported_error for encryption, multiple disks or other methods.
  explicit Reader(const std::filesystem::path& path) : Reader(io::Source::file(path)) {}
  /// The same for a zip held by `src` (a file or bytes in memory).
  explicit Reader(io::Source src) : path_(src.path()), file_(std::move(src)) {
    size_ = file_.size();
    parse();
  }

  const std::vector<Entry>& entries() const { return entries_; }
  /// The member called `name`, or nullptr.
  const Entry* find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  const std::string& path() const { return path_; }
  std::uint64_t file_size() const { return size_; }

  /// Decode the whole member into dst (dst.size() must be its uncompressed size) and verify
  /// its CRC-32 (corrupt_error naming the member on mismatch).
  void read_into(const Entry& e, std::span<std::byte> dst) {
    if (dst.size() != e.uncompressed_size) throw mismatch_error("destination size differs from the zip member", e.name, std::to_string(e.uncompressed_size) + " bytes", std::to_string(dst.size()) + " bytes", path_);
    if (e.method == 0) {
      file_.pread_all(dst, e.data_offset);
      check_crc(e, crc32(dst));
      return;
    }
    std::uint32_t crc = 0;
    std::uint64_t pos = 0;
    inflate_member(e, [&](std::span<std::byte>& out) { out = dst.subspan(static_cast<std::size_t>(pos)); },
                   [&](std::span<const std::byte> got) { crc = crc32_update(crc, got); pos += got.size(); return true; });
    check_crc(e, crc);
  }
  /// The whole decoded member (its size is bounded by 1032 × the file size, see max_deflate_ratio).
  std::vector<std::byte> read(const Entry& e) {
    std::vector<std::byte> out(static_cast<std::size_t>(e.uncompressed_size));
    read_into(e, out);
    return out;
  }
  /// Decoded bytes [offset, offset + dst.size()) of the member. With `verify`, the rest of the
  /// member is decoded too so that the CRC-32 can be checked.
  void read_range(const Entry& e, std::uint64_t offset, std::span<std::byte> dst, bool verify = true) {
    if (offset > e.uncompressed_size || dst.size() > e.uncompressed_size - offset)
      throw format_error("read past the end of zip member", path_, e.data_offset, e.name, "at most " + std::to_string(e.uncompressed_size) + " bytes", std::to_string(offset) + " + " + std::to_string(dst.size()));
    if (e.method == 0) {
      file_.pread_all(dst, e.data_offset + offset);
      if (!verify) return;
      const auto end = offset + dst.size();
      std::uint32_t crc = crc_of_stored(0, e, 0, offset);
      crc = crc32_update(crc, dst);
      check_crc(e, crc_of_stored(crc, e, end, e.uncompressed_size - end));
      return;
    }
    std::vector<std::byte> scratch;
    std::uint32_t crc = 0;
    std::uint64_t pos = 0;
    const std::uint64_t end = offset + dst.size();
    inflate_member(
        e,
        [&](std::span<std::byte>& out) {
          if (pos >= offset && pos < end) {  // straight into dst
            out = dst.subspan(static_cast<std::size_t>(pos - offset));
          } else {
            if (scratch.empty()) scratch.resize(std::size_t{1} << 18);
            const auto want = pos < offset ? std::min<std::uint64_t>(scratch.size(), offset - pos) : scratch.size();
            out = std::span<std::byte>(scratch).first(static_cast<std::size_t>(want));
          }
        },
        [&](std::span<const std::byte> got) {
          crc = crc32_update(crc, got);
          pos += got.size();
          return verify || pos < end;
        });
    if (verify) check_crc(e, crc);
  }
  /// The first min(n, size) decoded bytes, without a checksum check (for sniffing headers).
  std::vector<std::byte> read_prefix(const Entry& e, std::size_t n) {
    std::vector<std::byte> out(static_cast<std::size_t>(std::min<std::uint64_t>(n, e.uncompressed_size)));
    read_range(e, 0, out, false);
    return out;
  }

 private:
  [[noreturn]] void bad(const std::string& what, std::uint64_t offset, const std::string& name = {}, std::string expected = {}, std::string got = {}) const {
    throw format_error("invalid zip: " + what, path_, offset, name, std::move(expected), std::move(got));
  }
  void check_crc(const Entry& e, std::uint32_t got) const {
    if (enforce_checksums && got != e.crc32) throw corrupt_error("zip member checksum mismatch", path_, e.name, crc_hex(e.crc32), crc_hex(got));
  }
  // Continue crc `c` over the stored bytes [from, from + len) of e.
  std::uint32_t crc_of_stored(std::uint32_t c, const Entry& e, std::uint64_t from, std::uint64_t len) {
    std::vector<std::byte> buf(static_cast<std::size_t>(std::min<std::uint64_t>(len, std::uint64_t{1} << 20)));
    for (std::uint64_t done = 0; done < len;) {
      const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), len - done));
      file_.pread_all({buf.data(), k}, e.data_offset + from + done);
      c = crc32_update(c, {buf.data(), k});
      done += k;
    }
    return c;
  }

  /// Inflate member e. `next_out(span&)` sets where the next output goes; `got(span)` receives
  /// each produced piece and returns false to stop early. The stream must end exactly at the
  /// member's compressed size and produce exactly its uncompressed size.
  template <class NextOut, class Got>
  void inflate_member(const Entry& e, NextOut&& next_out, Got&& got) {
    z_stream zs{};
    if (::inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw unsupported_error("zlib inflateInit2 failed", path_);
    struct Guard { z_stream* z; ~Guard() { ::inflateEnd(z); } } guard{&zs};
    std::vector<std::byte> in(static_cast<std::size_t>(std::min<std::uint64_t>(e.compressed_size, std::uint64_t{1} << 20)));
    std::uint64_t in_done = 0, out_done = 0;
    std::byte probe[1];
    for (;;) {
      if (zs.avail_in == 0 && in_done < e.compressed_size) {
        const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), e.compressed_size - in_done));
        file_.pread_all({in.data(), k}, e.data_offset + in_done);
        in_done += k;
        zs.next_in = reinterpret_cast<Bytef*>(in.data());
        zs.avail_in = static_cast<uInt>(k);
      }
      // Once every declared byte is out, a 1-byte probe checks that the stream ends there.
      const bool probing = out_done == e.uncompressed_size;
      std::span<std::byte> out(probe, 1);
      if (!probing) {
        next_out(out);
        out = out.first(static_cast<std::size_t>(std::min<std::uint64_t>({out.size(), e.uncompressed_size - out_done, std::uint64_t{1} << 30})));
      }
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = static_cast<uInt>(out.size());
      const auto before_in = zs.avail_in;
      const int rc = ::inflate(&zs, Z_NO_FLUSH);
      const auto produced = out.size() - zs.avail_out;
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        bad("corrupt deflate stream (zlib error " + std::to_string(rc) + ")", e.data_offset, e.name);
      if (probing && produced)
        bad("deflated member is longer than its declared size", e.data_offset, e.name, std::to_string(e.uncompressed_size) + " bytes", "more");
      if (produced) {
        out_done += produced;
        if (!got(std::span<const std::byte>(out.data(), produced))) return;
      }
      if (rc == Z_STREAM_END) break;
      if (produced == 0 && before_in == zs.avail_in && in_done >= e.compressed_size)
        bad("deflate stream ends before the member's declared size", e.data_offset, e.name, std::to_string(e.uncompressed_size) + " bytes", std::to_string(out_done) + " bytes");
    }
    if (out_done != e.uncompressed_size)
      bad("deflate stream size differs from the declared size", e.data_offset, e.name, std::to_string(e.uncompressed_size) + " bytes", std::to_string(out_done) + " bytes");
    if (zs.avail_in != 0 || in_done != e.compressed_size)
      bad("bytes after the end of the deflate stream", e.data_offset, e.name, std::to_string(e.compressed_size) + " compressed bytes", std::to_string(in_done - zs.avail_in) + " used");
  }

  void parse() {
    if (size_ < 22) bad("file too small for a zip (" + std::to_string(size_) + " bytes)", 0);
    // End of central directory: the last 22 bytes plus a comment of up to 65535 bytes.
    const auto tail_len = static_cast<std::size_t>(std::min<std::uint64_t>(size_, 22 + 65535));
    std::vector<std::byte> tail(tail_len);
    file_.pread_all(tail, size_ - tail_len);
    std::size_t at = tail_len;  // position of the EOCD in tail
    for (std::size_t i = tail_len - 22 + 1; i-- > 0;) {
      if (load_le<std::uint32_t>(tail.data() + i) == eocd_sig && i + 22 + load_le<std::uint16_t>(tail.data() + i + 20) == tail_len) {
        at = i;
        break;
      }
    }
    if (at == tail_len) bad("no end-of-central-directory record", size_ - 22);
    const std::uint64_t eocd_off = size_ - tail_len + at;
    const std::byte* p = tail.data() + at;
    const auto disk = load_le<std::uint16_t>(p + 4), cd_disk = load_le<std::uint16_t>(p + 6);
    std::uint64_t n_disk = load_le<std::uint16_t>(p + 8), n_total = load_le<std::uint16_t>(p + 10);
    std::uint64_t cd_size = load_le<std::uint32_t>(p + 12), cd_off = load_le<std::uint32_t>(p + 16);
    std::uint64_t cd_limit = eocd_off;  // the central directory ends before this
    if (disk != 0 || cd_disk != 0) throw unsupported_error("multi-disk zip archives are not supported", path_);
    // A zip64 locator sits right before the EOCD when zip64 is used.
    if (eocd_off >= 20) {
      std::array<std::byte, 20> loc{};
      file_.pread_all(loc, eocd_off - 20);
      if (load_le<std::uint32_t>(loc.data()) == zip64_locator_sig) {
        const auto rec_off = load_le<std::uint64_t>(loc.data() + 8);
        if (load_le<std::uint32_t>(loc.data() + 4) != 0 || load_le<std::uint32_t>(loc.data() + 16) > 1) throw unsupported_error("multi-disk zip archives are not supported", path_);
        if (rec_off > eocd_off - 20 || eocd_off - 20 - rec_off < 56) bad("zip64 end-of-central-directory record out of range", eocd_off - 20);
        std::array<std::byte, 56> rec{};
        file_.pread_all(rec, rec_off);
        if (load_le<std::uint32_t>(rec.data()) != zip64_eocd_sig) bad("bad zip64 end-of-central-directory signature", rec_off);
        if (load_le<std::uint32_t>(rec.data() + 16) != 0 || load_le<std::uint32_t>(rec.data() + 20) != 0) throw unsupported_error("multi-disk zip archives are not supported", path_);
        n_disk = load_le<std::uint64_t>(rec.data() + 24);
        n_total = load_le<std::uint64_t>(rec.data() + 32);
        cd_size = load_le<std::uint64_t>(rec.data() + 40);
        cd_off = load_le<std::uint64_t>(rec.data() + 48);
        cd_limit = rec_off;
      }
    }
    if (n_disk != n_total) throw unsupported_error("multi-disk zip archives are not supported", path_);
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
      bad("central directory out of range", eocd_off, {}, "inside [0, " + std::to_string(cd_limit) + ")", "offset " + std::to_string(cd_off) + " size " + std::to_string(cd_size));
    if (cd_size > max_central_dir_bytes) bad("central directory larger than " + std::to_string(max_central_dir_bytes) + " bytes", cd_off);
    if (n_total > cd_size / 46) bad("more members declared than the central directory can hold", eocd_off, {}, "at most " + std::to_string(cd_size / 46), std::to_string(n_total));

    std::vector<std::byte> cd(static_cast<std::size_t>(cd_size));
    file_.pread_all(cd, cd_off);
    std::size_t pos = 0;
    entries_.reserve(static_cast<std::size_t>(n_total));
    for (std::uint64_t k = 0; k < n_total; ++k) {
      const std::uint64_t here = cd_off + pos;
      if (cd.size() - pos < 46 || load_le<std::uint32_t>(cd.data() + pos) != central_sig) bad("bad central directory entry", here);
      const std::byte* c = cd.data() + pos;
      const auto flags = load_le<std::uint16_t>(c + 8);
      Entry e;
      e.method = load_le<std::uint16_t>(c + 10);
      e.crc32 = load_le<std::uint32_t>(c + 16);
      e.compressed_size = load_le<std::uint32_t>(c + 20);
      e.uncompressed_size = load_le<std::uint32_t>(c + 24);
      const std::size_t n = load_le<std::uint16_t>(c + 28), m = load_le<std::uint16_t>(c + 30), kc = load_le<std::uint16_t>(c + 32);
      const auto start_disk = load_le<std::uint16_t>(c + 34);
      e.local_header_offset = load_le<std::uint32_t>(c + 42);
      if (cd.size() - pos - 46 < n + m + kc) bad("central directory entry runs past its end", here);
      e.name.assign(reinterpret_cast<const char*>(c + 46), n);
      if (auto why = bad_name_reason(e.name); !why.empty()) bad("unsafe member name (" + why + ")", here, e.name);
      if (flags & 0x41) throw unsupported_error("encrypted zip members are not supported", path_, e.name);
      if (e.method != 0 && e.method != 8) throw unsupported_error("zip compression method " + std::to_string(e.method) + " is not supported (only stored and deflated)", path_, e.name);
      parse_zip64_extra({c + 46 + n, m}, e, start_disk == max16, here);
      if (start_disk != 0 && start_disk != max16) throw unsupported_error("multi-disk zip archives are not supported", path_);
      pos += 46 + n + m + kc;
      if (!index_.emplace(e.name, entries_.size()).second) bad("duplicate member name", here, e.name);
      entries_.push_back(std::move(e));
    }
    if (pos != cd.size()) bad("central directory size does not match its entries", cd_off, {}, std::to_string(cd.size()) + " bytes", std::to_string(pos) + " bytes");
    for (auto& e : entries_) check_local(e, cd_off);
    // No two members may overlap (each spans its local header and data).
    std::vector<const Entry*> order;
    for (const auto& e : entries_) order.push_back(&e);
    std::sort(order.begin(), order.end(), [](auto a, auto b) { return a->local_header_offset < b->local_header_offset; });
    for (std::size_t i = 1; i < order.size(); ++i)
      if (order[i - 1]->data_offset + order[i - 1]->compressed_size > order[i]->local_header_offset)
        bad("member overlaps '" + order[i - 1]->name + "'", order[i]->local_header_offset, order[i]->name);
  }

  // Resolve the 0xffffffff fields of a central entry from its zip64 extra field.
  void parse_zip64_extra(std::span<const std::byte> extra, Entry& e, bool need_disk, std::uint64_t here) const {
    const bool nu = e.uncompressed_size == max32, nc = e.compressed_size == max32, no = e.local_header_offset == max32;
    bool found = false;
    for (std::size_t i = 0; i + 4 <= extra.size();) {
      const auto id = load_le<std::uint16_t>(extra.data() + i), len = load_le<std::uint16_t>(extra.data() + i + 2);
      if (extra.size() - i - 4 < len) bad("extra field runs past its end", here, e.name);
      if (id == zip64_extra_id && !found) {
        found = true;
        const std::size_t need = 8 * (std::size_t(nu) + nc + no) + 4 * std::size_t(need_disk);
        if (len < need) bad("zip64 extra field too short", here, e.name, std::to_string(need) + " bytes", std::to_string(len) + " bytes");
        const std::byte* q = extra.data() + i + 4;
        if (nu) { e.uncompressed_size = load_le<std::uint64_t>(q); q += 8; }
        if (nc) { e.compressed_size = load_le<std::uint64_t>(q); q += 8; }
        if (no) { e.local_header_offset = load_le<std::uint64_t>(q); q += 8; }
      }
      i += 4 + len;
    }
    if ((nu || nc || no) && !found) bad("sizes need a zip64 extra field, which is missing", here, e.name);
  }

  // Validate the local header of e against the central directory and set e.data_offset.
  void check_local(Entry& e, std::uint64_t cd_off) {
    const auto lo = e.local_header_offset;
    if (lo > cd_off || cd_off - lo < 30) bad("local header out of range", lo, e.name, "before the central directory at " + std::to_string(cd_off), "offset " + std::to_string(lo));
    // One read for the usual case: the fixed 30 bytes plus a name and extra field of <= 482 bytes.
    std::vector<std::byte> buf(static_cast<std::size_t>(std::min<std::uint64_t>(cd_off - lo, 512)));
    file_.pread_all(buf, lo);
    const std::byte* h = buf.data();
    if (load_le<std::uint32_t>(h) != local_sig) bad("bad local header signature", lo, e.name);
    const auto flags = load_le<std::uint16_t>(h + 6);
    const std::size_t n = load_le<std::uint16_t>(h + 26), m = load_le<std::uint16_t>(h + 28);
    if (cd_off - lo - 30 < n + m) bad("local header runs into the central directory", lo, e.name);
    std::vector<std::byte> nm(n + m);
    if (n + m == 0) {
      // nothing to copy (memcpy from/to a null pointer is undefined even for 0 bytes)
    } else if (30 + n + m <= buf.size()) {
      std::memcpy(nm.data(), h + 30, n + m);
    } else {
      file_.pread_all(nm, lo + 30);
    }
    if (std::string_view(reinterpret_cast<const char*>(nm.data()), n) != e.name) bad("local header name differs from the central directory", lo, e.name, e.name, std::string(reinterpret_cast<const char*>(nm.data()), n));
    e.data_offset = lo + 30 + n + m;
    if (e.compressed_size > cd_off - e.data_offset)
      bad("member data out of range", e.data_offset, e.name, "ending before the central directory at " + std::to_string(cd_off), std::to_string(e.compressed_size) + " bytes at " + std::to_string(e.data_offset));
    if (load_le<std::uint16_t>(h + 8) != e.method) bad("local header method differs from the central directory", lo, e.name);
    if (e.method == 0 && e.compressed_size != e.uncompressed_size)
      bad("stored member with different compressed and uncompressed sizes", lo, e.name, std::to_string(e.uncompressed_size), std::to_string(e.compressed_size));
    if (e.method == 8 && !inflatable(e.compressed_size, e.uncompressed_size))
      bad("declared size impossible for deflate (ratio above 1032:1)", lo, e.name, "at most " + std::to_string(max_inflated_bytes(e.compressed_size)) + " bytes", std::to_string(e.uncompressed_size) + " bytes");
    if (!(flags & 0x08)) {  // no data descriptor: the local header repeats crc and sizes
      Entry l;
      l.crc32 = load_le<std::uint32_t>(h + 14);
      l.compressed_size = load_le<std::uint32_t>(h + 18);
      l.uncompressed_size = load_le<std::uint32_t>(h + 22);
      l.name = e.name;
      if (l.compressed_size == max32 || l.uncompressed_size == max32) {
        // Local zip64 extras carry both sizes (uncompressed first) whichever overflowed.
        for (std::size_t i = n; i + 4 <= nm.size();) {
          const auto id = load_le<std::uint16_t>(nm.data() + i), len = load_le<std::uint16_t>(nm.data() + i + 2);
          if (nm.size() - i - 4 < len) bad("extra field runs past its end", lo, e.name);
          if (id == zip64_extra_id && len >= 16) {
            l.uncompressed_size = load_le<std::uint64_t>(nm.data() + i + 4);
            l.compressed_size = load_le<std::uint64_t>(nm.data() + i + 12);
            break;
          }
          i += 4 + len;
        }
      }
      if (l.crc32 != e.crc32 || l.compressed_size != e.compressed_size || l.uncompressed_size != e.uncompressed_size)
        bad("local header differs from the central directory", lo, e.name, "crc " + crc_hex(e.crc32) + " sizes " + std::to_string(e.compressed_size) + "/" + std::to_string(e.uncompressed_size),
            "crc " + crc_hex(l.crc32) + " sizes " + std::to_string(l.compressed_size) + "/" + std::to_string(l.uncompressed_size));
    }
  }

  std::string path_;
  io::Source file_;
  std::uint64_t size_ = 0;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
};

/// Streams members into an io::Writer (e.g. an io::AtomicFile's writer). Offsets in the
/// archive are the writer's positions, so the zip may follow other bytes. Deterministic:
/// fixed timestamps (1980-01-01), so equal input gives equal bytes.
class Writer {
 public:
  explicit Writer(io::Writer& out) : out_(out) {}

  /// Add a member holding `data`. deflate: compress (raw deflate at `level`, streamed, with a
  /// data descriptor); align > 0: pad (with an extra field in the local header) so the member's
  /// data starts at a multiple of align.
  void add(std::string_view name, std::span<const std::byte> data, bool deflate = false, std::size_t align = 0, int level = 6) {
    add_parts(name, {data}, deflate, align, level);
  }
  /// Add a member whose bytes are the concatenation of `parts` (a header and a payload, say),
  /// without first copying them together.
  void add_parts(std::string_view name, std::initializer_list<std::span<const std::byte>> parts, bool deflate = false, std::size_t align = 0, int level = 6) {
    add_parts(name, std::span<const std::span<const std::byte>>(parts.begin(), parts.size()), deflate, align, level);
  }
  /// The same for a run-time number of parts.
  void add_parts(std::string_view name, std::span<const std::span<const std::byte>> parts, bool deflate = false, std::size_t align = 0, int level = 6) {
    if (finished_) throw unsupported_error("zip writer already finished", out_.path(), std::string(name));
    if (auto why = bad_name_reason(name); !why.empty()) throw unsupported_error("invalid zip member name (" + why + ")", out_.path(), std::string(name));
    if (name.size() > max16) throw unsupported_error("zip member name longer than 65535 bytes", out_.path(), std::string(name).substr(0, 64));
    if (align > 32768) throw unsupported_error("zip member alignment above 32768", out_.path(), std::string(name));
    if (!names_.insert(std::string(name)).second) throw unsupported_error("duplicate zip member name", out_.path(), std::string(name));
    Central c;
    c.name = std::string(name);
    c.method = deflate ? 8 : 0;
    for (auto p : parts) {
      c.crc = crc32_update(c.crc, p);
      c.usize += p.size();
    }
    c.offset = out_.position();
    c.flags = utf8_flag(name) | (deflate ? 0x08 : 0);
    const std::uint64_t worst = deflate ? c.usize + c.usize / 1000 + std::uint64_t{64} * 1024 : c.usize;  // > deflate's bound
    c.zip64 = force_zip64_ || worst >= max32 || c.offset >= max32;
    if (!deflate) c.csize = c.usize;

    // Local header; sizes are known for stored members, in a data descriptor for deflated ones.
    std::vector<std::byte> h;
    append_le<std::uint32_t>(h, local_sig);
    append_le<std::uint16_t>(h, c.zip64 ? 45 : deflate ? 20 : 10);
    append_le<std::uint16_t>(h, c.flags);
    append_le<std::uint16_t>(h, c.method);
    append_le<std::uint32_t>(h, 0x210000);  // time 00:00:00, date 1980-01-01
    append_le<std::uint32_t>(h, deflate ? 0 : c.crc);
    const std::uint32_t sz32 = c.zip64 ? max32 : deflate ? 0 : static_cast<std::uint32_t>(c.usize);
    append_le<std::uint32_t>(h, sz32);
    append_le<std::uint32_t>(h, sz32);
    append_le<std::uint16_t>(h, static_cast<std::uint16_t>(name.size()));
    append_le<std::uint16_t>(h, 0);       // extra length, set below
    h.insert(h.end(), reinterpret_cast<const std::byte*>(name.data()), reinterpret_cast<const std::byte*>(name.data()) + name.size());
    std::size_t extra = 0;
    if (c.zip64) {
      append_le<std::uint16_t>(h, zip64_extra_id);
      append_le<std::uint16_t>(h, 16);
      append_le<std::uint64_t>(h, deflate ? 0 : c.usize);
      append_le<std::uint64_t>(h, deflate ? 0 : c.csize);
      extra += 20;
    }
    if (align > 1) {
      const std::uint64_t base = c.offset + h.size() + 6;
      const std::size_t pad = static_cast<std::size_t>((align - base % align) % align);
      append_le<std::uint16_t>(h, align_extra_id);
      append_le<std::uint16_t>(h, static_cast<std::uint16_t>(2 + pad));
      append_le<std::uint16_t>(h, static_cast<std::uint16_t>(align));
      h.resize(h.size() + pad, std::byte{0});
      extra += 6 + pad;
    }
    store_le<std::uint16_t>(h.data() + 28, static_cast<std::uint16_t>(extra));
    out_.write(h);
    if (!deflate) {
      for (auto p : parts) out_.write(p);
    } else {
      c.csize = deflate_parts(parts, level, c.name);
      std::vector<std::byte> d;  // data descriptor
      append_le<std::uint32_t>(d, descriptor_sig);
      append_le<std::uint32_t>(d, c.crc);
      if (c.zip64) {
        append_le<std::uint64_t>(d, c.csize);
        append_le<std::uint64_t>(d, c.usize);
      } else {
        append_le<std::uint32_t>(d, static_cast<std::uint32_t>(c.csize));
        append_le<std::uint32_t>(d, static_cast<std::uint32_t>(c.usize));
      }
      out_.write(d);
    }
    central_.push_back(std::move(c));
  }

  /// Write the central directory, with zip64 records when there are more than 65534 members or
  /// offsets/sizes past 4 GiB. No member can be added afterwards.
  void finish() {
    if (finished_) return;
    finished_ = true;
    const std::uint64_t cd_off = out_.position();
    std::vector<std::byte> b;
    for (const auto& c : central_) {
      b.clear();
      const bool zu = c.zip64 || c.usize >= max32, zc = c.zip64 || c.csize >= max32, zo = c.zip64 || c.offset >= max32;
      append_le<std::uint32_t>(b, central_sig);
      append_le<std::uint16_t>(b, (3 << 8) | 45);  // made by: unix, spec 4.5
      append_le<std::uint16_t>(b, c.zip64 ? 45 : c.method == 8 ? 20 : 10);
      append_le<std::uint16_t>(b, c.flags);
      append_le<std::uint16_t>(b, c.method);
      append_le<std::uint32_t>(b, 0x210000);
      append_le<std::uint32_t>(b, c.crc);
      append_le<std::uint32_t>(b, zc ? max32 : static_cast<std::uint32_t>(c.csize));
      append_le<std::uint32_t>(b, zu ? max32 : static_cast<std::uint32_t>(c.usize));
      append_le<std::uint16_t>(b, static_cast<std::uint16_t>(c.name.size()));
      const std::uint16_t extra = (zu || zc || zo) ? static_cast<std::uint16_t>(4 + 8 * (int(zu) + zc + zo)) : 0;
      append_le<std::uint16_t>(b, extra);
      append_le<std::uint32_t>(b, 0);           // comment length, disk
      append_le<std::uint16_t>(b, 0);           // internal attributes
      append_le<std::uint32_t>(b, 0100644u << 16);  // external: regular file, rw-r--r--
      append_le<std::uint32_t>(b, zo ? max32 : static_cast<std::uint32_t>(c.offset));
      b.insert(b.end(), reinterpret_cast<const std::byte*>(c.name.data()), reinterpret_cast<const std::byte*>(c.name.data()) + c.name.size());
      if (extra) {
        append_le<std::uint16_t>(b, zip64_extra_id);
        append_le<std::uint16_t>(b, static_cast<std::uint16_t>(extra - 4));
        if (zu) append_le<std::uint64_t>(b, c.usize);
        if (zc) append_le<std::uint64_t>(b, c.csize);
        if (zo) append_le<std::uint64_t>(b, c.offset);
      }
      out_.write(b);
    }
    const std::uint64_t cd_size = out_.position() - cd_off, n = central_.size();
    b.clear();
    const bool z64 = force_zip64_ || n >= max16 || cd_size >= max32 || cd_off >= max32;
    if (z64) {
      const std::uint64_t rec_off = out_.position();
      append_le<std::uint32_t>(b, zip64_eocd_sig);
      append_le<std::uint64_t>(b, 44);  // size of the rest of this record
      append_le<std::uint16_t>(b, (3 << 8) | 45);
      append_le<std::uint16_t>(b, 45);
      append_le<std::uint64_t>(b, 0);  // disk numbers
      append_le<std::uint64_t>(b, n);
      append_le<std::uint64_t>(b, n);
      append_le<std::uint64_t>(b, cd_size);
      append_le<std::uint64_t>(b, cd_off);
      append_le<std::uint32_t>(b, zip64_locator_sig);
      append_le<std::uint32_t>(b, 0);
      append_le<std::uint64_t>(b, rec_off);
      append_le<std::uint32_t>(b, 1);
    }
    append_le<std::uint32_t>(b, eocd_sig);
    append_le<std::uint32_t>(b, 0);  // disk numbers
    const auto n16 = static_cast<std::uint16_t>(z64 ? max16 : n);
    append_le<std::uint16_t>(b, n16);
    append_le<std::uint16_t>(b, n16);
    append_le<std::uint32_t>(b, z64 ? max32 : static_cast<std::uint32_t>(cd_size));
    append_le<std::uint32_t>(b, z64 ? max32 : static_cast<std::uint32_t>(cd_off));
    append_le<std::uint16_t>(b, 0);
    out_.write(b);
  }

  /// Write zip64 records for every member and the directory even when not needed (tests).
  void force_zip64(bool on = true) { force_zip64_ = on; }
  std::size_t size() const { return central_.size(); }

 private:
  struct Central {
    std::string name;
    std::uint16_t method = 0, flags = 0;
    std::uint32_t crc = 0;
    std::uint64_t csize = 0, usize = 0, offset = 0;
    bool zip64 = false;
  };
  static std::uint16_t utf8_flag(std::string_view name) {
    for (unsigned char ch : name)
      if (ch >= 0x80) return 0x800;
    return 0;
  }
  // Raw-deflate the parts into out_, returning the compressed size.
  std::uint64_t deflate_parts(std::span<const std::span<const std::byte>> parts, int level, const std::string& name) {
    z_stream zs{};
    if (::deflateInit2(&zs, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw unsupported_error("zlib deflateInit2 failed (level " + std::to_string(level) + ")", out_.path(), name);
    struct Guard { z_stream* z; ~Guard() { ::deflateEnd(z); } } guard{&zs};
    std::vector<std::byte> buf(std::size_t{1} << 18);
    std::uint64_t total = 0;
    auto pump = [&](const std::byte* p, std::size_t len, int flush) {
      zs.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(p));
      zs.avail_in = static_cast<uInt>(len);
      int rc;
      do {
        zs.next_out = reinterpret_cast<Bytef*>(buf.data());
        zs.avail_out = static_cast<uInt>(buf.size());
        rc = ::deflate(&zs, flush);
        if (rc == Z_STREAM_ERROR) throw unsupported_error("zlib deflate failed", out_.path(), name);
        const auto k = buf.size() - zs.avail_out;
        if (k) out_.write({buf.data(), k});
        total += k;
      } while (zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    };
    for (auto part : parts) {
      for (std::size_t done = 0; done < part.size();) {
        const std::size_t k = std::min<std::size_t>(part.size() - done, std::size_t{1} << 30);
        pump(part.data() + done, k, Z_NO_FLUSH);
        done += k;
      }
    }
    pump(nullptr, 0, Z_FINISH);
    return total;
  }

  io::Writer& out_;
  std::vector<Central> central_;
  std::unordered_set<std::string> names_;
  bool finished_ = false;
  bool force_zip64_ = false;
};

}  // namespace ckpt::detail::zip
