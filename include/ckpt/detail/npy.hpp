// ckpt/detail/npy.hpp — the NumPy .npy encoding shared by the .npy and .npz backends: header
// encoding (versions 1.0/2.0/3.0, padded so the data starts 64-byte aligned) and a strict
// header parser (a small Python-literal reader for the header dict: descr with byte order,
// fortran_order, shape), plus the Fortran-to-C reordering for arrays stored column-major.
// NumPy has no bfloat16 or float8, so those are written as a one-field structured dtype whose
// field name is the torch dtype name and whose values are the raw bits:
//   bf16 -> [('bfloat16', '<u2')]   f8_e4m3 -> [('float8_e4m3fn', '|u1')]   f8_e5m2 -> [('float8_e5m2', '|u1')]
// np.load gives a structured array (a['bfloat16'] is the uint16 bits), and ckpt reads the
// dtype back exactly. Spec: numpy/lib/format.py (NEP 1).
#pragma once

#include <algorithm>    // std::min
#include <array>        // magic
#include <charconv>     // integer parsing
#include <cstddef>      // std::byte
#include <cstdint>      // header fields
#include <cstring>      // std::memcpy
#include <functional>   // header byte source
#include <span>         // buffers
#include <string>       // header text
#include <string_view>  // parsing
#include <vector>       // encoded headers

#include "../dtype.hpp"       // DType, NumPy names
#include "../error.hpp"       // format_error, unsupported_error
#include "../state_dict.hpp"  // Value (the parsed header dict)
#include "../tensor.hpp"      // Shape, checked_nbytes
#include "endian.hpp"         // little-endian length fields

namespace ckpt::detail::npy {

inline constexpr std::array<unsigned char, 6> magic = {0x93, 'N', 'U', 'M', 'P', 'Y'};
/// Largest header a reader accepts (NumPy's own default limit for untrusted files is 10000).
inline constexpr std::size_t max_header_bytes = std::size_t{1} << 20;
/// Data offset alignment of the headers we write (as NumPy's ARRAY_ALIGN).
inline constexpr std::size_t alignment = 64;

/// True when the first bytes are the .npy magic.
inline bool sniff(std::span<const std::byte> head) {
  return head.size() >= magic.size() && std::memcmp(head.data(), magic.data(), magic.size()) == 0;
}

/// The descr of dtype t as the header dict spells it: '<f4', or the raw-bits form for bf16 / float8.
inline std::string descr(DType t) {
  const auto& i = info(t);
  if (!i.numpy.empty()) return "'" + std::string(i.numpy) + "'";
  return "[('" + std::string(i.torch) + "', '" + (i.size == 2 ? "<u2" : "|u1") + "')]";
}

/// The complete header (magic, version, length, dict, padding, '\n') of a C-order
/// little-endian array; its size is a multiple of 64. version 0 = the smallest that fits
/// (1.0, or 2.0 for headers over 64 KiB); 1, 2 or 3 force that version.
inline std::vector<std::byte> encode_header(DType t, const Shape& shape, int version = 0) {
  std::string shp = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) shp += (i ? ", " : "") + std::to_string(shape[i]);
  shp += shape.size() == 1 ? ",)" : ")";
  std::string dict = "{'descr': " + descr(t) + ", 'fortran_order': False, 'shape': " + shp + ", }";
  if (version == 0) version = dict.size() + 1 + 10 + alignment <= 0xffff ? 1 : 2;
  if (version < 1 || version > 3) throw unsupported_error(".npy format version " + std::to_string(version) + " does not exist (1, 2 or 3)");
  const std::size_t prefix = version == 1 ? 10 : 12;
  const std::size_t pad = (alignment - (prefix + dict.size() + 1) % alignment) % alignment;
  dict.append(pad, ' ');
  dict += '\n';
  if (version == 1 && dict.size() > 0xffff) throw unsupported_error(".npy header too long for format version 1.0");
  std::vector<std::byte> h(prefix);
  std::memcpy(h.data(), magic.data(), magic.size());
  h[6] = std::byte(version);
  h[7] = std::byte(0);
  if (version == 1) store_le<std::uint16_t>(h.data() + 8, static_cast<std::uint16_t>(dict.size()));
  else store_le<std::uint32_t>(h.data() + 8, static_cast<std::uint32_t>(dict.size()));
  h.insert(h.end(), reinterpret_cast<const std::byte*>(dict.data()), reinterpret_cast<const std::byte*>(dict.data()) + dict.size());
  return h;
}

/// What a .npy header says.
struct Header {
  DType dtype = DType::f32;
  Shape shape;
  bool fortran_order = false;
  bool big_endian = false;      ///< data bytes must be swapped (descr '>')
  int version = 1;
  std::size_t header_bytes = 0; ///< offset of the data from the start of the .npy
  std::uint64_t nbytes = 0;     ///< numel × element size
};

/// Reads the Python literal of a header dict: dicts, tuples, lists, strings, integers,
/// True/False/None. Tuples and lists both become JSON arrays.
class LiteralParser {
 public:
  LiteralParser(std::string_view s, const std::string& path, const std::string& key) : s_(s), path_(path), key_(key) {}
  Value parse() {
    Value v = value(0);
    ws();
    if (i_ != s_.size()) fail("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw format_error("invalid .npy header: " + what + " (header: " + std::string(s_.substr(0, 200)) + ")", path_, format_error::no_offset, key_);
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) { ++i_; return true; }
    return false;
  }
  Value value(int depth) {
    if (depth > 16) fail("nested too deeply");
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    const char c = s_[i_];
    if (c == '{') {
      ++i_;
      Value o = Value::object();
      while (!eat('}')) {
        Value k = value(depth + 1);
        if (!k.is_string()) fail("dict key is not a string");
        if (!eat(':')) fail("expected ':'");
        const auto key = k.get<std::string>();
        if (o.contains(key)) fail("duplicate key '" + key + "'");
        o[key] = value(depth + 1);
        if (!eat(',')) {
          if (!eat('}')) fail("expected ',' or '}'");
          break;
        }
      }
      return o;
    }
    if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      ++i_;
      Value a = Value::array();
      while (!eat(close)) {
        a.push_back(value(depth + 1));
        if (!eat(',')) {
          if (!eat(close)) fail(std::string("expected ',' or '") + close + "'");
          break;
        }
      }
      return a;
    }
    if (c == '\'' || c == '"') {
      std::string out;
      for (++i_; i_ < s_.size() && s_[i_] != c; ++i_) {
        if (s_[i_] == '\\') {
          if (++i_ >= s_.size()) break;
        }
        out += s_[i_];
      }
      if (i_ >= s_.size()) fail("unterminated string");
      ++i_;
      return out;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(s_.data() + i_, s_.data() + s_.size(), v);
      if (ec != std::errc()) fail("integer out of range");
      i_ = static_cast<std::size_t>(p - s_.data());
      if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long
      return v;
    }
    for (auto [word, val] : {std::pair<std::string_view, Value>{"True", true}, {"False", false}, {"None", nullptr}}) {
      if (s_.substr(i_, word.size()) == word) {
        i_ += word.size();
        return val;
      }
    }
    fail(std::string("unexpected character '") + c + "'");
  }

  std::string_view s_;
  std::size_t i_ = 0;
  const std::string& path_;
  const std::string& key_;
};

/// Map a descr type string ("<f4", ">i8", "|b1", "?") to a DType; sets big_endian.
inline DType dtype_from_typestr(std::string_view ts, bool& big_endian, const std::string& path, const std::string& key) {
  big_endian = false;
  std::string_view body = ts;
  char order = '=';
  if (!body.empty() && (body[0] == '<' || body[0] == '>' || body[0] == '|' || body[0] == '=')) {
    order = body[0];
    body.remove_prefix(1);
  }
  auto unsupported = [&](const std::string& why) {
    return unsupported_error(".npy dtype '" + std::string(ts) + "' is not supported (" + why + "; supported: " + dtype_names() + ")", path, key);
  };
  if (body == "?") body = "b1";
  const char kind = body.empty() ? '\0' : body[0];
  if (kind == 'O') throw unsupported("object arrays need pickle, which ckpt never runs");
  if (kind == 'U' || kind == 'S' || kind == 'a') throw unsupported("strings are not tensors");
  if (body.size() < 2) throw unsupported("unknown type string");
  std::size_t size = 0;
  auto [p, ec] = std::from_chars(body.data() + 1, body.data() + body.size(), size);
  if (ec != std::errc() || p != body.data() + body.size()) throw unsupported("unknown type string");
  for (const auto& i : detail::dtype_table) {
    if (i.numpy.empty() || i.size != size) continue;
    const char k = i.numpy[1];
    if (k == kind) {
      big_endian = order == '>' && size > 1;
      return i.type;
    }
  }
  throw unsupported("no ckpt dtype has this kind and size");
}

/// Parse a .npy header. `read(dst, offset)` fills dst from the .npy's bytes at offset;
/// `available` is the number of bytes the .npy has (file or member size). Checks the header
/// length against `available` and max_header_bytes, and the data size against `available`.
inline Header parse_header(const std::function<void(std::span<std::byte>, std::uint64_t)>& read, std::uint64_t available,
                           const std::string& path, const std::string& key = {}) {
  auto bad = [&](const std::string& what, std::uint64_t at, std::string expected = {}, std::string got = {}) {
    return format_error(what, path, at, key, std::move(expected), std::move(got));
  };
  if (available < 10) throw bad("not a .npy (too small: " + std::to_string(available) + " bytes)", 0);
  std::array<std::byte, 12> fixed{};
  read({fixed.data(), static_cast<std::size_t>(std::min<std::uint64_t>(12, available))}, 0);
  if (!sniff(fixed)) throw bad("not a .npy (bad magic)", 0);
  Header h;
  h.version = static_cast<int>(fixed[6]);
  const int minor = static_cast<int>(fixed[7]);
  if (h.version < 1 || h.version > 3 || minor != 0)
    throw unsupported_error(".npy format version " + std::to_string(h.version) + "." + std::to_string(minor) + " is not supported (1.0, 2.0, 3.0)", path, key);
  const std::size_t prefix = h.version == 1 ? 10 : 12;
  if (available < prefix) throw bad("not a .npy (too small)", 0);
  const std::uint64_t hlen = h.version == 1 ? load_le<std::uint16_t>(fixed.data() + 8) : load_le<std::uint32_t>(fixed.data() + 8);
  if (hlen > max_header_bytes) throw bad(".npy header too large", 8, "at most " + std::to_string(max_header_bytes) + " bytes", std::to_string(hlen) + " bytes");
  if (hlen > available - prefix) throw bad(".npy header runs past the end", 8, "at most " + std::to_string(available - prefix) + " bytes", std::to_string(hlen) + " bytes");
  std::string text(static_cast<std::size_t>(hlen), '\0');
  read(std::as_writable_bytes(std::span(text)), prefix);
  h.header_bytes = prefix + static_cast<std::size_t>(hlen);

  Value d = LiteralParser(text, path, key).parse();
  if (!d.is_object() || d.size() != 3 || !d.contains("descr") || !d.contains("fortran_order") || !d.contains("shape"))
    throw bad("invalid .npy header: the dict must have exactly the keys 'descr', 'fortran_order', 'shape'", prefix, "descr, fortran_order, shape", d.dump(-1, ' ', false, Value::error_handler_t::replace));
  if (!d["fortran_order"].is_boolean()) throw bad("invalid .npy header: fortran_order is not a bool", prefix);
  h.fortran_order = d["fortran_order"].get<bool>();
  const Value& shape = d["shape"];
  if (!shape.is_array()) throw bad("invalid .npy header: shape is not a tuple", prefix);
  for (const auto& s : shape) {
    if (!s.is_number_integer() || s.get<std::int64_t>() < 0) throw bad("invalid .npy header: shape has a negative or non-integer dimension", prefix, "non-negative integers", shape.dump(-1, ' ', false, Value::error_handler_t::replace));
    h.shape.push_back(s.get<std::int64_t>());
  }
  const Value& ds = d["descr"];
  if (ds.is_string()) {
    h.dtype = dtype_from_typestr(ds.get<std::string>(), h.big_endian, path, key);
  } else if (ds.is_array() && ds.size() == 1 && ds[0].is_array() && ds[0].size() == 2 && ds[0][0].is_string() && ds[0][1].is_string()) {
    // The raw-bits convention for dtypes NumPy lacks: [('bfloat16', '<u2')] and the float8s.
    const auto field = ds[0][0].get<std::string>();
    bool be = false;
    const DType bits = dtype_from_typestr(ds[0][1].get<std::string>(), be, path, key);
    bool found = false;
    for (DType t : {DType::bf16, DType::f8_e4m3, DType::f8_e5m2}) {
      if (field == info(t).torch && element_size(t) == element_size(bits) && (bits == DType::u16 || bits == DType::u8)) {
        h.dtype = t;
        h.big_endian = be;
        found = true;
      }
    }
    if (!found) throw unsupported_error(".npy structured dtype " + ds.dump(-1, ' ', false, Value::error_handler_t::replace) + " is not supported (only the raw-bits forms [('bfloat16', '<u2')], [('float8_e4m3fn', '|u1')], [('float8_e5m2', '|u1')])", path, key);
  } else {
    throw unsupported_error(".npy descr " + ds.dump(-1, ' ', false, Value::error_handler_t::replace) + " is not supported (structured dtypes other than the bfloat16/float8 raw-bits forms)", path, key);
  }
  auto nb = checked_nbytes(h.dtype, h.shape);
  if (!nb) throw bad("invalid .npy header: shape too large", prefix, "numel × element size below 2^63", shape_string(h.shape));
  h.nbytes = *nb;
  if (h.nbytes > available - h.header_bytes)
    throw bad(".npy data shorter than its shape says", h.header_bytes, std::to_string(h.nbytes) + " bytes", std::to_string(available - h.header_bytes) + " bytes");
  return h;
}

/// Reorder column-major (Fortran) elements into row-major (C) order.
inline void fortran_to_c(std::span<const std::byte> src, std::span<std::byte> dst, const Shape& shape, std::size_t es) {
  const std::size_t nd = shape.size();
  if (nd <= 1 || src.empty()) {
    if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size());
    return;
  }
  std::vector<std::uint64_t> fstride(nd);  // Fortran strides in elements
  std::uint64_t s = 1;
  for (std::size_t k = 0; k < nd; ++k) {
    fstride[k] = s;
    s *= static_cast<std::uint64_t>(shape[k]);
  }
  std::vector<std::int64_t> idx(nd, 0);
  const std::size_t n = src.size() / es;
  std::uint64_t f = 0;  // Fortran offset of idx
  for (std::size_t c = 0; c < n; ++c) {
    std::memcpy(dst.data() + c * es, src.data() + f * es, es);
    for (std::size_t k = nd; k-- > 0;) {  // odometer over the C index, last axis fastest
      if (++idx[k] < shape[k]) {
        f += fstride[k];
        break;
      }
      f -= fstride[k] * static_cast<std::uint64_t>(idx[k] - 1);
      idx[k] = 0;
    }
  }
}

/// Turn stored bytes into C-order little-endian bytes in place / into dst (same size).
inline void to_native(const Header& h, std::span<std::byte> stored, std::span<std::byte> dst) {
  if (h.big_endian) {
    const auto es = element_size(h.dtype);
    // Complex numbers are two floats, each swapped on its own.
    byteswap_elements(stored, h.dtype == DType::c64 || h.dtype == DType::c128 ? es / 2 : es);
  }
  if (h.fortran_order) fortran_to_c(stored, dst, h.shape, element_size(h.dtype));
  else if (stored.data() != dst.data() && !stored.empty()) std::memcpy(dst.data(), stored.data(), stored.size());
}

}  // namespace ckpt::detail::npy
