// ckpt/detail/pickle.hpp — what the restricted unpickler (unpickle.hpp) and the protocol-2
// pickler (pickle_write.hpp) share: Python's pickle opcodes with their names for messages, a
// UTF-8 check (pickled str values become JSON strings, which must be valid UTF-8), and the
// object model and limits of the unpickler — including the inert *record* that stands for a
// Python object nothing was allowed to build (its fields are named in `field`).
// Reference: CPython's Lib/pickle.py and Lib/pickletools.py (protocols 0 to 5).
#pragma once

#include <cstddef>        // sizes
#include <cstdint>        // opcode bytes
#include <memory>         // dict index
#include <string>         // names
#include <string_view>    // UTF-8 input
#include <unordered_map>  // dict index
#include <vector>         // object items

#include "record.hpp"  // record field names

namespace ckpt::detail::pickle {

/// Pickle opcodes (protocols 0-5).
namespace op {
inline constexpr std::uint8_t MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2';
inline constexpr std::uint8_t FLOAT = 'F', INT = 'I', BININT = 'J', BININT1 = 'K', LONG = 'L', BININT2 = 'M';
inline constexpr std::uint8_t NONE = 'N', PERSID = 'P', BINPERSID = 'Q', REDUCE = 'R', STRING = 'S';
inline constexpr std::uint8_t BINSTRING = 'T', SHORT_BINSTRING = 'U', UNICODE = 'V', BINUNICODE = 'X';
inline constexpr std::uint8_t APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}';
inline constexpr std::uint8_t APPENDS = 'e', GET = 'g', BINGET = 'h', INST = 'i', LONG_BINGET = 'j';
inline constexpr std::uint8_t LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q';
inline constexpr std::uint8_t LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')';
inline constexpr std::uint8_t SETITEMS = 'u', BINFLOAT = 'G';
// protocol 2
inline constexpr std::uint8_t PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84;
inline constexpr std::uint8_t TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89;
inline constexpr std::uint8_t LONG1 = 0x8a, LONG4 = 0x8b;
// protocol 3
inline constexpr std::uint8_t BINBYTES = 'B', SHORT_BINBYTES = 'C';
// protocol 4
inline constexpr std::uint8_t SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e;
inline constexpr std::uint8_t EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92;
inline constexpr std::uint8_t STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95;
// protocol 5
inline constexpr std::uint8_t BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98;
}  // namespace op

/// "BINPUT" for messages; "0x.." for bytes that are no opcode.
inline std::string opcode_name(std::uint8_t c) {
  switch (c) {
    case op::MARK: return "MARK"; case op::STOP: return "STOP"; case op::POP: return "POP";
    case op::POP_MARK: return "POP_MARK"; case op::DUP: return "DUP"; case op::FLOAT: return "FLOAT";
    case op::INT: return "INT"; case op::BININT: return "BININT"; case op::BININT1: return "BININT1";
    case op::LONG: return "LONG"; case op::BININT2: return "BININT2"; case op::NONE: return "NONE";
    case op::PERSID: return "PERSID"; case op::BINPERSID: return "BINPERSID"; case op::REDUCE: return "REDUCE";
    case op::STRING: return "STRING"; case op::BINSTRING: return "BINSTRING";
    case op::SHORT_BINSTRING: return "SHORT_BINSTRING"; case op::UNICODE: return "UNICODE";
    case op::BINUNICODE: return "BINUNICODE"; case op::APPEND: return "APPEND"; case op::BUILD: return "BUILD";
    case op::GLOBAL: return "GLOBAL"; case op::DICT: return "DICT"; case op::EMPTY_DICT: return "EMPTY_DICT";
    case op::APPENDS: return "APPENDS"; case op::GET: return "GET"; case op::BINGET: return "BINGET";
    case op::INST: return "INST"; case op::LONG_BINGET: return "LONG_BINGET"; case op::LIST: return "LIST";
    case op::EMPTY_LIST: return "EMPTY_LIST"; case op::OBJ: return "OBJ"; case op::PUT: return "PUT";
    case op::BINPUT: return "BINPUT"; case op::LONG_BINPUT: return "LONG_BINPUT"; case op::SETITEM: return "SETITEM";
    case op::TUPLE: return "TUPLE"; case op::EMPTY_TUPLE: return "EMPTY_TUPLE"; case op::SETITEMS: return "SETITEMS";
    case op::BINFLOAT: return "BINFLOAT"; case op::PROTO: return "PROTO"; case op::NEWOBJ: return "NEWOBJ";
    case op::EXT1: return "EXT1"; case op::EXT2: return "EXT2"; case op::EXT4: return "EXT4";
    case op::TUPLE1: return "TUPLE1"; case op::TUPLE2: return "TUPLE2"; case op::TUPLE3: return "TUPLE3";
    case op::NEWTRUE: return "NEWTRUE"; case op::NEWFALSE: return "NEWFALSE"; case op::LONG1: return "LONG1";
    case op::LONG4: return "LONG4"; case op::BINBYTES: return "BINBYTES"; case op::SHORT_BINBYTES: return "SHORT_BINBYTES";
    case op::SHORT_BINUNICODE: return "SHORT_BINUNICODE"; case op::BINUNICODE8: return "BINUNICODE8";
    case op::BINBYTES8: return "BINBYTES8"; case op::EMPTY_SET: return "EMPTY_SET"; case op::ADDITEMS: return "ADDITEMS";
    case op::FROZENSET: return "FROZENSET"; case op::NEWOBJ_EX: return "NEWOBJ_EX"; case op::STACK_GLOBAL: return "STACK_GLOBAL";
    case op::MEMOIZE: return "MEMOIZE"; case op::FRAME: return "FRAME"; case op::BYTEARRAY8: return "BYTEARRAY8";
    case op::NEXT_BUFFER: return "NEXT_BUFFER"; case op::READONLY_BUFFER: return "READONLY_BUFFER";
    default: {
      static constexpr char d[] = "0123456789abcdef";
      return std::string("0x") + d[c >> 4] + d[c & 15];
    }
  }
}

/// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1fu; }
    else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0fu; }
    else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07u; }
    else return false;
    if (s.size() - i <= n) return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3fu);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;  // overlong
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

/// Append code point `cp` as UTF-8 (used to decode protocol-0 text strings).
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

/// Bounds on what one pickle may make the unpickler do.
struct Limits {
  std::size_t max_memo = std::size_t{1} << 20;      ///< memo entries
  std::size_t max_stack = std::size_t{1} << 20;     ///< values on the stack
  std::size_t max_marks = 1024;                     ///< nested MARKs
  std::size_t max_objects = std::size_t{1} << 21;   ///< objects created (~100 bytes each)
  std::uint64_t max_work = std::uint64_t{1} << 27;  ///< opcodes + items moved
  std::size_t max_line = std::size_t{1} << 16;      ///< length of a text-opcode line
};

/// The fields of a record (Object::Type::record; its shape is described in record.hpp).
namespace field = ::ckpt::detail::record;

/// A Python object as the restricted unpickler sees it.
struct Object {
  enum class Type : std::uint8_t { none, boolean, integer, floating, string, bytes, tuple, list, dict, global, opaque, record };
  Type type = Type::none;
  /// boolean: the value; dict: an OrderedDict; integer: the value is `u` (>= 2^63); bytes: a
  /// bytearray; global: inert (not allowed: it may only become a record's "$class")
  bool flag = false;
  std::int64_t i = 0;       ///< integer value; opaque: an index the Hooks define
  std::uint64_t u = 0;      ///< integer value when flag (2^63 <= value < 2^64)
  double f = 0;             ///< float value
  std::uint32_t tag = 0;    ///< opaque: a kind the Hooks define
  std::string s;            ///< str (UTF-8), bytes, global ("module.name")
  std::vector<Object*> items;  ///< tuple and list elements; dict and record: key, value, key, value, ...
  std::unique_ptr<std::unordered_map<std::string, std::size_t>> index;  ///< dict: hashed key -> item pair

  bool is(Type t) const { return type == t; }
  bool is_global(std::string_view qualified) const { return type == Type::global && s == qualified; }
  /// Dicts and records hold key/value pairs in `items`.
  bool has_pairs() const { return type == Type::dict || type == Type::record; }
  std::size_t dict_size() const { return items.size() / 2; }
  /// The value of str key `key` of a dict or record, or nullptr.
  Object* find(std::string_view key) const {
    for (std::size_t k = 0; k + 1 < items.size(); k += 2)
      if (items[k]->type == Type::string && items[k]->s == key) return items[k + 1];
    return nullptr;
  }
  /// A record's class name ("module.name"), or "" when its "$class" is not a global.
  std::string_view record_class() const {
    const Object* c = find(field::cls);
    return c && c->type == Type::global ? std::string_view(c->s) : std::string_view();
  }
};

/// Python-ish name of an object's type, for messages.
inline std::string type_name(const Object& o) {
  switch (o.type) {
    case Object::Type::none: return "None";
    case Object::Type::boolean: return "bool";
    case Object::Type::integer: return "int";
    case Object::Type::floating: return "float";
    case Object::Type::string: return "str";
    case Object::Type::bytes: return o.flag ? "bytearray" : "bytes";
    case Object::Type::tuple: return "tuple";
    case Object::Type::list: return "list";
    case Object::Type::dict: return o.flag ? "OrderedDict" : "dict";
    case Object::Type::global: return "global '" + o.s + "'";
    case Object::Type::opaque: return "object";
    case Object::Type::record: return o.record_class().empty() ? std::string("object") : "'" + std::string(o.record_class()) + "' object";
  }
  return "object";
}

}  // namespace ckpt::detail::pickle
