// ckpt/detail/pickle_write.hpp — a protocol-2 pickler: emits the opcodes for None, bool, int,
// float, str, tuples, lists, dicts, references to globals (memoized, so each is spelled once),
// calls (REDUCE, NEWOBJ), BUILD and persistent ids, and turns a JSON value into the matching Python value
// (object -> dict, array -> list). Protocol 2 is what torch.save writes and what every Python
// 3 and torch version reads. Callers emit in stack order, as pickle.py's save_* functions do.
#pragma once

#include <bit>          // std::bit_cast for BINFLOAT
#include <cstddef>      // std::byte
#include <cstdint>      // integer encodings
#include <map>          // memoized globals
#include <string>       // names
#include <string_view>  // text
#include <vector>       // output bytes

#include "../error.hpp"       // unsupported_error
#include "../state_dict.hpp"  // Value (nlohmann::json)
#include "pickle.hpp"         // opcodes, valid_utf8

namespace ckpt::detail::pickle {

class Pickler {
 public:
  /// Starts the stream with PROTO 2.
  Pickler() {
    byte(op::PROTO);
    byte(2);
  }

  void none() { byte(op::NONE); }
  void boolean(bool b) { byte(b ? op::NEWTRUE : op::NEWFALSE); }
  void integer(std::int64_t v) {
    if (v >= 0 && v < 256) {
      byte(op::BININT1);
      byte(static_cast<std::uint8_t>(v));
    } else if (v >= 0 && v < 65536) {
      byte(op::BININT2);
      le<std::uint16_t>(static_cast<std::uint16_t>(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      byte(op::BININT);
      le<std::int32_t>(static_cast<std::int32_t>(v));
    } else {
      long1(static_cast<std::uint64_t>(v), v < 0);
    }
  }
  void unsigned_integer(std::uint64_t v) {
    if (v <= static_cast<std::uint64_t>(INT64_MAX)) integer(static_cast<std::int64_t>(v));
    else long1(v, false);
  }
  void floating(double d) {
    byte(op::BINFLOAT);
    const auto bits = std::bit_cast<std::uint64_t>(d);
    for (int k = 7; k >= 0; --k) byte(static_cast<std::uint8_t>(bits >> (8 * k)));
  }
  /// A str; `s` must be UTF-8 (unsupported_error naming `what` otherwise).
  void string(std::string_view s, std::string_view what = {}) {
    if (!valid_utf8(s)) throw unsupported_error("string is not valid UTF-8, cannot pickle it", "", std::string(what));
    if (s.size() > 0xffffffffu) throw unsupported_error("string longer than 4 GiB", "", std::string(what));
    byte(op::BINUNICODE);
    le<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
    raw(s);
  }
  /// A reference to module.name (GLOBAL the first time, BINGET afterwards).
  void global(std::string_view module, std::string_view name) {
    const std::string key = std::string(module) + "\n" + std::string(name);
    if (auto it = globals_.find(key); it != globals_.end()) {
      get(it->second);
      return;
    }
    byte(op::GLOBAL);
    raw(key);
    byte('\n');
    const auto idx = next_memo_++;
    globals_.emplace(key, idx);
    put(idx);
  }
  void mark() { byte(op::MARK); }
  /// Tuple of the values emitted since mark() (or TUPLEn / EMPTY_TUPLE for n <= 3 without mark).
  void tuple_from_mark() { byte(op::TUPLE); }
  void tuple_n(std::size_t n) {  // the last n emitted values, n <= 3
    static constexpr std::uint8_t ops[] = {op::EMPTY_TUPLE, op::TUPLE1, op::TUPLE2, op::TUPLE3};
    byte(ops[n]);
  }
  void empty_list() { byte(op::EMPTY_LIST); }
  void appends() { byte(op::APPENDS); }
  void empty_dict() { byte(op::EMPTY_DICT); }
  void setitems() { byte(op::SETITEMS); }
  void reduce() { byte(op::REDUCE); }
  void newobj() { byte(op::NEWOBJ); }
  /// Memoize the value on top of the stack; memo_get(index) pushes it again (a shared reference).
  std::uint32_t memoize() {
    const auto idx = next_memo_++;
    put(idx);
    return idx;
  }
  void memo_get(std::uint32_t idx) { get(idx); }
  void build() { byte(op::BUILD); }
  void binpersid() { byte(op::BINPERSID); }

  /// A JSON value as the Python value json.loads would give (object -> dict, array -> list).
  /// `what` names it in errors.
  void value(const Value& v, const std::string& what = {}) {
    switch (v.type()) {
      case Value::value_t::null: none(); break;
      case Value::value_t::boolean: boolean(v.get<bool>()); break;
      case Value::value_t::number_integer: integer(v.get<std::int64_t>()); break;
      case Value::value_t::number_unsigned: unsigned_integer(v.get<std::uint64_t>()); break;
      case Value::value_t::number_float: floating(v.get<double>()); break;
      case Value::value_t::string: string(v.get_ref<const std::string&>(), what); break;
      case Value::value_t::array:
        empty_list();
        if (!v.empty()) {
          mark();
          for (const auto& x : v) value(x, what);
          appends();
        }
        break;
      case Value::value_t::object:
        empty_dict();
        if (!v.empty()) {
          mark();
          for (const auto& [k, x] : v.items()) {
            string(k, what);
            value(x, what);
          }
          setitems();
        }
        break;
      default: throw unsupported_error("JSON value of type " + std::string(v.type_name()) + " has no Python equivalent", "", what);
    }
  }

  /// Append STOP and return the bytes.
  std::vector<std::byte> finish() {
    byte(op::STOP);
    return std::move(out_);
  }

 private:
  void byte(std::uint8_t b) { out_.push_back(static_cast<std::byte>(b)); }
  void raw(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out_.insert(out_.end(), p, p + s.size());
  }
  template <class T>
  void le(T v) {
    for (std::size_t k = 0; k < sizeof(T); ++k) byte(static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * k)));
  }
  // LONG1 with the shortest two's-complement encoding of v (as pickle.encode_long).
  void long1(std::uint64_t v, bool negative) {
    std::vector<std::uint8_t> b;
    b.reserve(9);
    for (int k = 0; k < 8; ++k) b.push_back(static_cast<std::uint8_t>(v >> (8 * k)));
    if (!negative) {
      b.push_back(0);  // sign byte for values with the top bit set
      while (b.size() > 1 && b.back() == 0 && !(b[b.size() - 2] & 0x80)) b.pop_back();
    } else {
      while (b.size() > 1 && b.back() == 0xff && (b[b.size() - 2] & 0x80)) b.pop_back();
    }
    byte(op::LONG1);
    byte(static_cast<std::uint8_t>(b.size()));
    for (auto x : b) byte(x);
  }
  void put(std::uint32_t idx) {
    if (idx < 256) {
      byte(op::BINPUT);
      byte(static_cast<std::uint8_t>(idx));
    } else {
      byte(op::LONG_BINPUT);
      le<std::uint32_t>(idx);
    }
  }
  void get(std::uint32_t idx) {
    if (idx < 256) {
      byte(op::BINGET);
      byte(static_cast<std::uint8_t>(idx));
    } else {
      byte(op::LONG_BINGET);
      le<std::uint32_t>(idx);
    }
  }

  std::vector<std::byte> out_;
  std::map<std::string, std::uint32_t> globals_;
  std::uint32_t next_memo_ = 0;
};

}  // namespace ckpt::detail::pickle
