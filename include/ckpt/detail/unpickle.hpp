// ckpt/detail/unpickle.hpp — a restricted unpickler that runs no code. It interprets the pickle
// opcodes of protocols 0-5 into a small object model (None, bool, int, float, str, bytes, tuple,
// list, dict, records, references to allowed globals, and opaque objects its Hooks define),
// never importing or calling anything: a GLOBAL that the Hooks do not allow is a format_error
// naming it — unless Hooks::inert_objects is set, when it may only become the "$class" of an
// inert record (pickle.hpp's Object::Type::record: the call's arguments, BUILD's state and the
// items added to it, as data). REDUCE / NEWOBJ / BUILD / persistent ids otherwise only do what
// the Hooks implement (the torch backend's hooks rebuild tensors and NumPy values; the default
// hooks know collections.OrderedDict and the builtins set, frozenset, complex, bytes and
// bytearray, which become records or bytes). Memo size, stack size, MARK nesting, object count
// and total work are bounded, so a hostile pickle cannot make it allocate or loop beyond fixed
// limits. Objects live in an arena owned by the Unpickler (cycles are harmless; destruction is
// flat).
#pragma once

#include <bit>            // std::bit_cast for BINFLOAT
#include <charconv>       // FLOAT text
#include <cstddef>        // std::byte
#include <cstdint>        // fixed-width fields
#include <cstring>        // std::memcpy
#include <deque>          // object arena with stable addresses
#include <optional>       // hashed keys
#include <span>           // input bytes
#include <string>         // strings, messages
#include <string_view>    // names
#include <unordered_map>  // memo, dict index
#include <vector>         // stack, items

#include "../error.hpp"          // format_error
#include "pickle.hpp"           // opcodes, UTF-8 helpers, Object, Limits
#include "pickle_builtins.hpp"  // what the default hooks make of OrderedDict, set, complex, bytes
#include "pickle_text.hpp"      // protocol-0 text arguments

namespace ckpt::detail::pickle {

class Unpickler;

/// What the unpickler may build beyond plain data. Override to allow more globals and give
/// them meaning; everything not allowed here is refused, or with `inert_objects` recorded.
class Hooks {
 public:
  virtual ~Hooks() = default;
  /// May GLOBAL `module.name` be referenced? (Referencing is not calling.) Default:
  /// collections.OrderedDict and the builtins set, frozenset, complex, bytes, bytearray, and
  /// _codecs.encode (how protocol 2 spells bytes).
  virtual bool allow_global(std::string_view module, std::string_view name) const {
    if (module == "collections") return name == "OrderedDict";
    if (module == "builtins") return name == "set" || name == "frozenset" || name == "complex" || name == "bytes" || name == "bytearray";
    return module == "_codecs" && name == "encode";
  }
  /// The allowed globals, for the message that refuses another one.
  virtual std::string allowed_globals() const {
    return "collections.OrderedDict, builtins.set/frozenset/complex/bytes/bytearray, _codecs.encode";
  }
  /// REDUCE / NEWOBJ: the result of calling allowed global `fn` with the tuple `args`.
  virtual Object* call(Unpickler& u, Object& fn, Object& args);
  /// PERSID / BINPERSID: the object persistent id `pid` stands for. Default: refused.
  virtual Object* persistent_load(Unpickler& u, Object& pid);
  /// BUILD: set `state` on `obj`. Default: an OrderedDict's attribute dict (a module state
  /// dict's `_metadata`) is accepted and dropped; a record gets it as its "$state" (a second
  /// BUILD with a dict updates a dict state); anything else is refused.
  virtual void build(Unpickler& u, Object& obj, Object& state);

  /// Read globals the hooks do not allow as inert records instead of refusing the pickle: such a
  /// global can only be referenced ({"$global": name}) or become a record's "$class" — it is
  /// never imported, looked up or called (LoadOptions::inert_objects).
  bool inert_objects = false;
};

class Unpickler {
 public:
  /// Read pickles from `data`; `file` and `base_offset` (where `data` starts in it) go into errors.
  Unpickler(std::span<const std::byte> data, std::string file, Hooks& hooks, Limits limits = {}, std::uint64_t base_offset = 0)
      : data_(data), file_(std::move(file)), hooks_(hooks), lim_(limits), base_(base_offset) {}
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  /// Run one pickle from the current position to its STOP and return its value. Call again to
  /// read the next pickle of a stream (each gets a fresh memo, as in Python).
  Object* load() {
    stack_.clear();
    marks_.clear();
    memo_.clear();
    for (;;) {
      op_pos_ = pos_;
      if (++work_ > lim_.max_work) fail("too much work (more than " + std::to_string(lim_.max_work) + " steps)");
      const std::uint8_t c = u8();
      if (c == op::STOP) {
        Object* r = pop();
        if (!stack_.empty() || !marks_.empty()) fail("values left on the stack at STOP");
        return r;
      }
      step(c);
      if (stack_.size() > lim_.max_stack) fail("stack deeper than " + std::to_string(lim_.max_stack));
    }
  }
  /// Byte position after the last pickle read.
  std::size_t position() const noexcept { return pos_; }
  const std::string& file() const noexcept { return file_; }

  /// A new object in the arena.
  Object* make(Object::Type t) {
    if (arena_.size() >= lim_.max_objects) fail("more than " + std::to_string(lim_.max_objects) + " objects");
    Object& o = arena_.emplace_back();
    o.type = t;
    return &o;
  }
  Object* make_int(std::int64_t v) {
    Object* o = make(Object::Type::integer);
    o->i = v;
    return o;
  }
  Object* make_string(std::string v, Object::Type t = Object::Type::string) {
    if (t == Object::Type::string && !valid_utf8(v)) fail("string is not valid UTF-8");
    Object* o = make(t);
    o->s = std::move(v);
    return o;
  }
  /// Set d[k] = v with Python's replace-on-equal-key semantics for str/int/bool/None/float keys.
  void dict_set(Object& d, Object* k, Object* v) {
    if (auto h = hash_key(*k)) {
      if (!d.index) d.index = std::make_unique<std::unordered_map<std::string, std::size_t>>();
      auto [it, inserted] = d.index->try_emplace(std::move(*h), d.dict_size());
      if (!inserted) {
        d.items[2 * it->second + 1] = v;
        return;
      }
    }
    d.items.push_back(k);
    d.items.push_back(v);
  }
  /// A reference to global `qualified` ("module.name").
  Object* make_global(std::string qualified) { return make_string(std::move(qualified), Object::Type::global); }
  /// A record whose "$class" is `cls` (a global, or the record of an earlier call).
  Object* make_record(Object* cls) {
    Object* r = make(Object::Type::record);
    set_field(*r, field::cls, cls);
    return r;
  }
  /// A set or frozenset: {"$class": "builtins.set" | "builtins.frozenset", "$items": [...]}.
  Object* make_set(bool frozen, std::vector<Object*> items) {
    Object* r = make_record(make_global(frozen ? "builtins.frozenset" : "builtins.set"));
    Object* l = make(Object::Type::list);
    l->items = std::move(items);
    set_field(*r, field::items, l);
    return r;
  }
  /// Set field `name` of record `r` to `v`.
  void set_field(Object& r, std::string_view name, Object* v) { dict_set(r, make_string(std::string(name)), v); }
  /// A format_error about the opcode being interpreted.
  [[noreturn]] void fail(const std::string& what) const {
    throw format_error("invalid pickle: " + what, file_, base_ + op_pos_);
  }

 private:
  static std::optional<std::string> hash_key(const Object& k) {
    switch (k.type) {
      case Object::Type::string: return "s" + k.s;
      case Object::Type::integer: return k.flag ? "i" + std::to_string(k.u) : "i" + std::to_string(k.i);
      case Object::Type::boolean: return std::string(k.flag ? "i1" : "i0");  // True == 1 in Python
      case Object::Type::none: return std::string("n");
      case Object::Type::floating: {
        if (k.f > -9.2e18 && k.f < 9.2e18 && k.f == static_cast<double>(static_cast<std::int64_t>(k.f)))  // range first: the cast of 2e35 is undefined
          return "i" + std::to_string(static_cast<std::int64_t>(k.f));  // 1.0 == 1
        return "f" + std::to_string(std::bit_cast<std::uint64_t>(k.f));
      }
      default: return std::nullopt;  // tuples etc.: kept, not merged (they are refused later)
    }
  }

  // ---- reading bytes ----
  void need(std::uint64_t n) const {
    if (n > data_.size() - pos_) fail("truncated (" + std::to_string(n) + " bytes needed, " + std::to_string(data_.size() - pos_) + " left)");
  }
  std::uint8_t u8() {
    need(1);
    return static_cast<std::uint8_t>(data_[pos_++]);
  }
  template <class T>
  T le() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string bytes(std::uint64_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(data_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  std::string line() {
    const std::size_t start = pos_;
    while (pos_ < data_.size() && data_[pos_] != std::byte{'\n'}) {
      if (pos_ - start > lim_.max_line) fail("text line longer than " + std::to_string(lim_.max_line) + " bytes");
      ++pos_;
    }
    if (pos_ >= data_.size()) fail("truncated (line without newline)");
    std::string s(reinterpret_cast<const char*>(data_.data() + start), pos_ - start);
    ++pos_;
    if (!s.empty() && s.back() == '\r') s.pop_back();
    return s;
  }

  // ---- stack ----
  std::size_t frame() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Object* o) { stack_.push_back(o); }
  Object* pop() {
    if (stack_.size() <= frame()) fail("stack underflow");
    Object* o = stack_.back();
    stack_.pop_back();
    return o;
  }
  Object* top() {
    if (stack_.size() <= frame()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Object*> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Object*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    work_ += items.size();
    if (work_ > lim_.max_work) fail("too much work (more than " + std::to_string(lim_.max_work) + " steps)");
    return items;
  }
  Object* seq(Object::Type t, std::vector<Object*> items) {
    Object* o = make(t);
    o->items = std::move(items);
    return o;
  }

  // ---- memo ----
  void put(std::uint64_t idx) {
    if (!memo_.count(idx) && memo_.size() >= lim_.max_memo) fail("memo larger than " + std::to_string(lim_.max_memo) + " entries");
    memo_[idx] = top();
  }
  void get(std::uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("memo key " + std::to_string(idx) + " was never stored");
    push(it->second);
  }

  // ---- numbers and text ----
  std::int64_t parse_int(std::string s) {
    return text::parse_int(std::move(s), [this](const std::string& m) { fail(m); });
  }
  Object* long_bytes(std::uint64_t n) {
    need(n);
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data() + pos_);
    pos_ += static_cast<std::size_t>(n);
    Object* o = make(Object::Type::integer);
    if (n == 0) return o;
    std::uint64_t v = 0;
    const std::size_t low = n < 8 ? static_cast<std::size_t>(n) : 8;
    for (std::size_t k = 0; k < low; ++k) v |= static_cast<std::uint64_t>(p[k]) << (8 * k);
    const bool neg = p[n - 1] & 0x80;
    if (n < 8) {
      if (neg) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
      o->i = static_cast<std::int64_t>(v);
      return o;
    }
    for (std::uint64_t k = 8; k < n; ++k)  // bytes above 64 bits must be pure sign extension
      if (p[k] != (neg ? 0xff : 0x00)) fail("integer does not fit in 64 bits");
    if (neg) {
      if (!(v >> 63)) fail("integer does not fit in 64 bits");
      o->i = static_cast<std::int64_t>(v);
    } else if (v >> 63) {  // 2^63 <= value < 2^64 (9 bytes, the last one 0)
      o->flag = true;
      o->u = v;
    } else {
      o->i = static_cast<std::int64_t>(v);
    }
    return o;
  }

  // ---- globals and calls ----
  void global(std::string module, const std::string& name) {
    if (module == "__builtin__") module = "builtins";  // Python 2 spelling, as pickle's fix_imports
    const bool allowed = hooks_.allow_global(module, name);
    if (!allowed && !hooks_.inert_objects)
      throw format_error("pickle refers to global '" + module + "." + name + "', which is not allowed (a pickle may not import or run code; allowed: " +
                             hooks_.allowed_globals() + "); --inert-objects (LoadOptions::inert_objects) reads it as an inert record, running nothing",
                         file_, base_ + op_pos_);
    Object* g = make_global(module + "." + name);
    g->flag = !allowed;  // inert: nothing below ever calls it
    push(g);
  }
  // REDUCE / NEWOBJ / NEWOBJ_EX. An inert global (or, in inert mode, a record: a call of what a
  // call returned) is not called: the result is a record of the call.
  Object* call(Object* fn, Object* args, Object* kwargs = nullptr) {
    using T = Object::Type;
    if (!args->is(T::tuple)) fail("arguments of a " + type_name(*fn) + " are not a tuple");
    const bool has_kwargs = kwargs && (!kwargs->is(T::dict) || kwargs->dict_size() != 0);
    if ((fn->is(T::global) && fn->flag) || (fn->is(T::record) && hooks_.inert_objects)) {
      Object* r = make_record(fn);
      if (!args->items.empty()) set_field(*r, field::args, args);
      if (has_kwargs) set_field(*r, field::kwargs, kwargs);
      return r;
    }
    if (!fn->is(T::global)) fail("cannot call a " + type_name(*fn));
    if (has_kwargs) fail("NEWOBJ_EX with keyword arguments");
    Object* r = hooks_.call(*this, *fn, *args);
    if (!r) fail("'" + fn->s + "' returned nothing");
    return r;
  }
  // What APPEND(S) / SETITEM(S) add to: a list / dict itself, or a record's "$items" (made on
  // first use; a record subclassing list or dict, in Python).
  Object* items_of(Object* o, bool dict, const char* opname) {
    using T = Object::Type;
    if (o->is(dict ? T::dict : T::list)) return o;
    if (o->is(T::record)) {
      Object* it = o->find(field::items);
      if (!it) set_field(*o, field::items, it = make(dict ? T::dict : T::list));
      if (it->is(dict ? T::dict : T::list)) return it;
    }
    fail(std::string(opname) + (dict ? " on a " : " to a ") + type_name(*o));
  }

  void step(std::uint8_t c) {
    using T = Object::Type;
    switch (c) {
      case op::PROTO: {
        const auto v = u8();
        if (v > 5) fail("unsupported pickle protocol " + std::to_string(v));
        break;
      }
      case op::FRAME: need(le<std::uint64_t>()); break;
      case op::MARK:
        if (marks_.size() >= lim_.max_marks) fail("MARKs nested deeper than " + std::to_string(lim_.max_marks));
        marks_.push_back(stack_.size());
        break;
      case op::POP:
        if (stack_.size() > frame()) stack_.pop_back();
        else pop_mark();
        break;
      case op::POP_MARK: pop_mark(); break;
      case op::DUP: push(top()); break;
      // scalars
      case op::NONE: push(make(T::none)); break;
      case op::NEWTRUE:
      case op::NEWFALSE: {
        Object* o = make(T::boolean);
        o->flag = c == op::NEWTRUE;
        push(o);
        break;
      }
      case op::INT: {
        const std::string s = line();
        if (s == "00" || s == "01") {
          Object* o = make(T::boolean);
          o->flag = s == "01";
          push(o);
        } else {
          push(make_int(parse_int(s)));
        }
        break;
      }
      case op::LONG: push(make_int(parse_int(line()))); break;
      case op::BININT: push(make_int(le<std::int32_t>())); break;
      case op::BININT1: push(make_int(u8())); break;
      case op::BININT2: push(make_int(le<std::uint16_t>())); break;
      case op::LONG1: push(long_bytes(u8())); break;
      case op::LONG4: {
        const auto n = le<std::int32_t>();
        if (n < 0) fail("negative LONG4 length");
        push(long_bytes(static_cast<std::uint64_t>(n)));
        break;
      }
      case op::FLOAT: {
        const std::string s = line();
        double v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p != s.data() + s.size()) fail("bad float text '" + s + "'");
        Object* o = make(T::floating);
        o->f = v;
        push(o);
        break;
      }
      case op::BINFLOAT: {
        need(8);
        std::uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<std::uint8_t>(data_[pos_++]);
        Object* o = make(T::floating);
        o->f = std::bit_cast<double>(bits);
        push(o);
        break;
      }
      // strings and bytes
      case op::STRING: push(make_string(text::unquote(line(), [this](const std::string& m) { fail(m); }))); break;
      case op::BINSTRING: {
        const auto n = le<std::int32_t>();
        if (n < 0) fail("negative BINSTRING length");
        push(make_string(bytes(static_cast<std::uint64_t>(n))));
        break;
      }
      case op::SHORT_BINSTRING: push(make_string(bytes(u8()))); break;
      case op::UNICODE: push(make_string(text::raw_unicode_escape(line(), [this](const std::string& m) { fail(m); }))); break;
      case op::BINUNICODE: push(make_string(bytes(le<std::uint32_t>()))); break;
      case op::SHORT_BINUNICODE: push(make_string(bytes(u8()))); break;
      case op::BINUNICODE8: push(make_string(bytes(le<std::uint64_t>()))); break;
      case op::BINBYTES: push(make_string(bytes(le<std::uint32_t>()), T::bytes)); break;
      case op::SHORT_BINBYTES: push(make_string(bytes(u8()), T::bytes)); break;
      case op::BINBYTES8: push(make_string(bytes(le<std::uint64_t>()), T::bytes)); break;
      case op::BYTEARRAY8:
        push(make_string(bytes(le<std::uint64_t>()), T::bytes));
        stack_.back()->flag = true;  // a bytearray
        break;
      // containers
      case op::EMPTY_TUPLE: push(make(T::tuple)); break;
      case op::TUPLE: push(seq(T::tuple, pop_mark())); break;
      case op::TUPLE1:
      case op::TUPLE2:
      case op::TUPLE3: {
        const std::size_t n = c - op::TUPLE1 + 1u;
        std::vector<Object*> items(n);
        for (std::size_t k = n; k-- > 0;) items[k] = pop();
        push(seq(T::tuple, std::move(items)));
        break;
      }
      case op::EMPTY_LIST: push(make(T::list)); break;
      case op::LIST: push(seq(T::list, pop_mark())); break;
      case op::APPEND: {
        Object* v = pop();
        items_of(top(), false, "APPEND")->items.push_back(v);
        break;
      }
      case op::APPENDS: {
        auto items = pop_mark();
        Object* l = items_of(top(), false, "APPENDS");
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      case op::EMPTY_DICT: push(make(T::dict)); break;
      case op::DICT: {
        auto items = pop_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        Object* d = make(T::dict);
        for (std::size_t k = 0; k < items.size(); k += 2) dict_set(*d, items[k], items[k + 1]);
        push(d);
        break;
      }
      case op::SETITEM: {
        Object* v = pop();
        Object* k = pop();
        dict_set(*items_of(top(), true, "SETITEM"), k, v);
        break;
      }
      case op::SETITEMS: {
        auto items = pop_mark();
        Object* d = items_of(top(), true, "SETITEMS");
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        for (std::size_t k = 0; k < items.size(); k += 2) dict_set(*d, items[k], items[k + 1]);
        break;
      }
      // memo
      case op::PUT: put(static_cast<std::uint64_t>(parse_int(line()))); break;
      case op::BINPUT: put(u8()); break;
      case op::LONG_BINPUT: put(le<std::uint32_t>()); break;
      case op::MEMOIZE: put(memo_.size()); break;
      case op::GET: get(static_cast<std::uint64_t>(parse_int(line()))); break;
      case op::BINGET: get(u8()); break;
      case op::LONG_BINGET: get(le<std::uint32_t>()); break;
      // globals, calls, state, persistent ids
      case op::GLOBAL: {
        std::string module = line();
        global(std::move(module), line());
        break;
      }
      case op::STACK_GLOBAL: {
        Object* name = pop();
        Object* module = pop();
        if (!name->is(T::string) || !module->is(T::string)) fail("STACK_GLOBAL needs two strings");
        global(module->s, name->s);
        break;
      }
      case op::REDUCE: {
        Object* args = pop();
        Object* fn = pop();
        push(call(fn, args));
        break;
      }
      case op::NEWOBJ: {
        Object* args = pop();
        Object* cls = pop();
        push(call(cls, args));
        break;
      }
      case op::NEWOBJ_EX: {
        Object* kwargs = pop();
        Object* args = pop();
        Object* cls = pop();
        push(call(cls, args, kwargs));
        break;
      }
      case op::BUILD: {
        Object* state = pop();
        hooks_.build(*this, *top(), *state);
        break;
      }
      case op::PERSID: {
        Object* pid = make_string(line());
        Object* r = hooks_.persistent_load(*this, *pid);
        if (!r) fail("persistent id resolved to nothing");
        push(r);
        break;
      }
      case op::BINPERSID: {
        Object* pid = pop();
        Object* r = hooks_.persistent_load(*this, *pid);
        if (!r) fail("persistent id resolved to nothing");
        push(r);
        break;
      }
      case op::INST:
      case op::OBJ:
        fail("opcode " + opcode_name(c) + " (class instantiation) is not allowed");
      case op::EXT1:
      case op::EXT2:
      case op::EXT4:
        fail("opcode " + opcode_name(c) + " (extension registry) is not allowed");
      // sets (protocol 4): records with the elements in "$items"
      case op::EMPTY_SET: push(make_set(false, {})); break;
      case op::FROZENSET: push(make_set(true, pop_mark())); break;
      case op::ADDITEMS: {
        auto items = pop_mark();
        Object* s = top();
        if (!s->is(T::record) || s->record_class() != "builtins.set") fail("ADDITEMS to a " + type_name(*s));
        Object* l = items_of(s, false, "ADDITEMS");
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      case op::NEXT_BUFFER:
      case op::READONLY_BUFFER:
        fail("opcode " + opcode_name(c) + ": out-of-band buffers are not supported");
      default:
        fail("unknown opcode " + opcode_name(c));
    }
  }

  std::span<const std::byte> data_;
  std::size_t pos_ = 0, op_pos_ = 0;
  std::string file_;
  Hooks& hooks_;
  Limits lim_;
  std::uint64_t base_;
  std::deque<Object> arena_;
  std::vector<Object*> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Object*> memo_;
  std::uint64_t work_ = 0;
};

// ---- default hooks ---------------------------------------------------------------------------

inline Object* Hooks::call(Unpickler& u, Object& fn, Object& args) {
  if (Object* r = builtins::call(u, fn, args)) return r;
  u.fail("'" + fn.s + "' cannot be called");
}

inline Object* Hooks::persistent_load(Unpickler& u, Object&) {
  u.fail("persistent ids are not allowed here");
}

inline void Hooks::build(Unpickler& u, Object& obj, Object& state) {
  using T = Object::Type;
  if (obj.is(T::dict) && (state.is(T::dict) || state.is(T::none))) return;
  if (obj.is(T::record)) {
    Object* old = obj.find(field::state);
    if (!old) return u.set_field(obj, field::state, &state);
    if (!old->is(T::dict) || !state.is(T::dict)) u.fail("BUILD twice on a " + type_name(obj));
    Object* merged = u.make(T::dict);  // as inst.__dict__.update(state); the old state may be shared
    for (const Object* d : {old, &state})
      for (std::size_t k = 0; k < d->dict_size(); ++k) u.dict_set(*merged, d->items[2 * k], d->items[2 * k + 1]);
    return u.set_field(obj, field::state, merged);
  }
  u.fail("BUILD (setting state) on a " + type_name(obj) + " is not allowed");
}

}  // namespace ckpt::detail::pickle
