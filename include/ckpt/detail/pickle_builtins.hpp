// ckpt/detail/pickle_builtins.hpp — what the default unpickler hooks (unpickle.hpp) make of the
// Python builtins a torch file holds as values, none of them called:
//   collections.OrderedDict() / OrderedDict([(k, v), ...])  -> a dict (flagged ordered)
//   builtins.set / frozenset(iterable)                      -> record {"$class", "$items": [...]}
//   builtins.complex(real, imag)                            -> record {"$class", "$args": [re, im]}
//   _codecs.encode(str, "latin1"), builtins.bytes(...)      -> bytes
//   builtins.bytearray(bytes | (str, encoding))             -> bytes flagged as a bytearray
// (protocol 2 spells bytes as _codecs.encode of their latin-1 text, and sets as a call of
// `set` with a list). Functions take the Unpickler as a template parameter `U`, so this header
// comes before the Unpickler that instantiates them.
#pragma once

#include <string>  // byte strings

#include "pickle.hpp"  // Object

namespace ckpt::detail::pickle::builtins {

/// The bytes of `s` encoded as `encoding` (latin-1, or UTF-8 as it is).
template <class U>
std::string encode(U& u, const std::string& s, const std::string& encoding) {
  if (encoding == "utf-8" || encoding == "utf8") return s;
  if (encoding != "latin1" && encoding != "latin-1") u.fail("unsupported encoding '" + encoding + "' for bytes");
  std::string out;
  for (std::size_t k = 0; k < s.size(); ++k) {  // s is valid UTF-8: code points < 256 only
    const auto c = static_cast<unsigned char>(s[k]);
    if (c < 0x80) out += static_cast<char>(c);
    else if ((c & 0xe0) == 0xc0 && c <= 0xc3 && k + 1 < s.size()) out += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[++k]) & 0x3f));
    else u.fail("character outside latin-1 in bytes");
  }
  return out;
}

/// bytes(...) / bytearray(...) from its arguments: (), (bytes,) or (str, encoding).
template <class U>
Object* make_bytes(U& u, const Object& args, bool bytearray) {
  using T = Object::Type;
  const auto& a = args.items;
  std::string b;
  if (a.size() == 1 && a[0]->is(T::bytes)) b = a[0]->s;
  else if (a.size() == 2 && a[0]->is(T::string) && a[1]->is(T::string)) b = encode(u, a[0]->s, a[1]->s);
  else if (!a.empty()) u.fail(std::string(bytearray ? "bytearray" : "bytes") + " needs (), (bytes,) or (str, encoding)");
  Object* o = u.make_string(std::move(b), T::bytes);
  o->flag = bytearray;
  return o;
}

/// The value of calling builtin `fn` with `args`, or nullptr when `fn` is none of the above.
template <class U>
Object* call(U& u, const Object& fn, Object& args) {
  using T = Object::Type;
  const auto& a = args.items;
  if (fn.is_global("collections.OrderedDict")) {  // OrderedDict() or OrderedDict([(k, v), ...])
    Object* d = u.make(T::dict);
    d->flag = true;
    if (a.empty()) return d;
    if (a.size() == 1 && (a[0]->is(T::list) || a[0]->is(T::tuple))) {
      for (Object* kv : a[0]->items) {
        if (!(kv->is(T::tuple) || kv->is(T::list)) || kv->items.size() != 2) u.fail("OrderedDict item is not a pair");
        u.dict_set(*d, kv->items[0], kv->items[1]);
      }
      return d;
    }
    u.fail("unsupported arguments to collections.OrderedDict");
  }
  if (fn.is_global("builtins.set") || fn.is_global("builtins.frozenset")) {
    const bool frozen = fn.is_global("builtins.frozenset");
    if (a.empty()) return u.make_set(frozen, {});
    if (a.size() != 1 || !(a[0]->is(T::list) || a[0]->is(T::tuple))) u.fail("'" + fn.s + "' needs a list");
    return u.make_set(frozen, a[0]->items);
  }
  if (fn.is_global("builtins.complex")) {
    if (a.size() > 2) u.fail("builtins.complex needs (real, imag)");
    for (const Object* x : a)
      if (!x->is(T::floating) && !x->is(T::integer) && !x->is(T::boolean)) u.fail("builtins.complex of a " + type_name(*x));
    Object* r = u.make_record(u.make_global(fn.s));
    if (!a.empty()) u.set_field(*r, field::args, &args);
    return r;
  }
  if (fn.is_global("_codecs.encode")) {  // (str, "latin1") -> bytes
    if (a.size() != 2 || !a[0]->is(T::string) || !a[1]->is(T::string)) u.fail("_codecs.encode needs (str, encoding)");
    return make_bytes(u, args, false);
  }
  if (fn.is_global("builtins.bytes")) return make_bytes(u, args, false);
  if (fn.is_global("builtins.bytearray")) return make_bytes(u, args, true);
  return nullptr;
}

}  // namespace ckpt::detail::pickle::builtins
