// ckpt/detail/numpy_pickle.hpp — NumPy values inside a pickle, read without NumPy and without
// calling anything, for the torch backend's unpickler hooks (torch_pickle.hpp). NumPy pickles
// (with NumPy 1's `numpy.core.*` or NumPy 2's `numpy._core.*` module names):
//   a dtype:  numpy.dtype('f8', False, True) + BUILD (3, '<', subarray, names, fields, ...)
//   a scalar: numpy.core.multiarray.scalar(dtype, bytes)
//   an array: numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')
//               + BUILD (1, shape, dtype, is_fortran, bytes)     (protocols 2-4)
//             numpy.core.numeric._frombuffer(bytes, dtype, shape, order)   (protocol 5)
// A scalar becomes a plain value (bool, int, float; a complex a builtins.complex record; a str_
// a str; a bytes_ bytes), with the dtype's byte order honoured. An array becomes an `Array` the
// hooks turn into a tensor: the bytes as stored, its byte order, and Fortran order as strides.
// What has no tensor or value (object, string, datetime, structured dtypes) becomes an opaque
// "refused" object carrying the reason, which the tree conversion reports with the key path.
#pragma once

#include <cstdint>      // sizes
#include <cstring>      // memcpy
#include <optional>     // dtype lookups
#include <span>         // byte swaps
#include <string>       // messages, bytes
#include <string_view>  // names
#include <vector>       // strides

#include "../dtype.hpp"   // DType, float16
#include "../tensor.hpp"  // Shape, checked_numel
#include "endian.hpp"     // byteswap_elements
#include "pickle.hpp"     // Object

namespace ckpt::detail::numpy_pickle {

using pickle::Object;

/// Opaque tags (torch_pickle.hpp uses 1 for storages and 2 for tensors).
inline constexpr std::uint32_t dtype_tag = 3, pending_array_tag = 4, refused_tag = 5;

/// Is `module.name` one of the globals NumPy pickles through?
inline bool allow_global(std::string_view module, std::string_view name) {
  if (module == "numpy") return name == "dtype" || name == "ndarray";
  if (module == "numpy.core.multiarray" || module == "numpy._core.multiarray") return name == "scalar" || name == "_reconstruct";
  if (module == "numpy.core.numeric" || module == "numpy._core.numeric") return name == "_frombuffer";
  return false;
}
inline constexpr std::string_view allowed_globals =
    "numpy.dtype, numpy.ndarray, numpy.[_]core.multiarray.scalar/_reconstruct, numpy.[_]core.numeric._frombuffer";

/// An array read from a pickle: elements as stored (`data` points into the unpickler's arena).
struct Array {
  DType dtype = DType::f32;
  Shape shape;
  std::vector<std::int64_t> stride;  ///< in elements: C order, or Fortran order's reverse
  bool big_endian = false;
  const std::string* data = nullptr;
};

/// The tensor dtype of NumPy type code `code` ("f8", "b1", "c16", ...), or nullopt.
inline std::optional<DType> dtype_of_code(std::string_view code) {
  if (code.size() < 2) return std::nullopt;
  for (const auto& i : detail::dtype_table)
    if (!i.numpy.empty() && i.numpy.substr(1) == code) return i.type;
  return std::nullopt;
}

namespace impl {
inline std::string_view module_of(const Object& fn) { return std::string_view(fn.s).substr(0, fn.s.rfind('.')); }
inline bool is(const Object& fn, std::string_view name) {
  return fn.is(Object::Type::global) && allow_global(module_of(fn), std::string_view(fn.s).substr(fn.s.rfind('.') + 1)) && fn.s.ends_with(name);
}
inline Object* refuse(Object* o, std::string why) {
  o->type = Object::Type::opaque;
  o->tag = refused_tag;
  o->s = std::move(why);
  o->items.clear();
  return o;
}
template <class U>
const Object& dtype_arg(U& u, const Object* d, const char* what) {
  if (!d->is(Object::Type::opaque) || d->tag != dtype_tag) u.fail(std::string(what) + ": dtype argument is a " + pickle::type_name(*d));
  return *d;
}
template <class U>
Shape shape_of(U& u, const Object& o) {
  if (!(o.is(Object::Type::tuple) || o.is(Object::Type::list)) || o.items.size() > 64) u.fail("NumPy array shape is not a tuple of at most 64 ints");
  Shape s;
  for (const Object* x : o.items) {
    if (!x->is(Object::Type::integer) || x->flag || x->i < 0) u.fail("NumPy array shape holds a " + pickle::type_name(*x));
    s.push_back(x->i);
  }
  return s;
}
// The array of `shape` with dtype object `d` over `data` (C or Fortran order), or a refusal.
template <class U, class Sink>
Object* array(U& u, Object* target, const Object& d, Shape shape, bool fortran, const Object& data, Sink&& sink) {
  const auto dt = d.i ? std::nullopt : dtype_of_code(d.s);
  if (!dt) return refuse(target, "NumPy array of dtype '" + d.s + "' has no tensor type (object, string, datetime and structured arrays are not read)");
  if (!data.is(Object::Type::bytes)) u.fail("NumPy array data is a " + pickle::type_name(data) + ", not bytes");
  const auto n = checked_numel(shape);
  const auto es = element_size(*dt);
  if (!n || static_cast<std::uint64_t>(*n) != data.s.size() / es || data.s.size() % es)
    u.fail("NumPy array of shape " + shape_string(shape) + " and dtype '" + d.s + "' with " + std::to_string(data.s.size()) + " data bytes");
  Array a;
  a.dtype = *dt;
  a.stride.assign(shape.size(), 1);
  std::int64_t acc = 1;
  for (std::size_t k = 0; k < shape.size(); ++k) {  // Fortran: first index fastest
    const std::size_t dim = fortran ? k : shape.size() - 1 - k;
    a.stride[dim] = acc;
    acc *= shape[dim] > 1 ? shape[dim] : 1;
  }
  a.shape = std::move(shape);
  a.big_endian = d.flag;
  a.data = &data.s;
  sink(*target, a);
  return target;
}
}  // namespace impl

/// REDUCE / NEWOBJ of a NumPy global: a dtype, a scalar's value, a pending array (completed by
/// BUILD), or — for _frombuffer — an array handed to `sink(object, Array)`. nullptr when `fn`
/// is not NumPy's.
template <class U, class Sink>
Object* call(U& u, const Object& fn, Object& args, Sink&& sink) {
  using T = Object::Type;
  const auto& a = args.items;
  if (impl::is(fn, ".dtype")) {  // dtype(code, align, copy)
    if (a.empty() || !a[0]->is(T::string)) u.fail("numpy.dtype needs a type code");
    Object* d = u.make(T::opaque);
    d->tag = dtype_tag;
    d->s = a[0]->s;
    if (!d->s.empty() && (d->s[0] == '<' || d->s[0] == '>' || d->s[0] == '|' || d->s[0] == '=')) {
      d->flag = d->s[0] == '>';
      d->s.erase(0, 1);
    }
    return d;
  }
  if (impl::is(fn, "._reconstruct")) {  // (ndarray or a subclass, (0,), b'b'): filled in by BUILD
    Object* o = u.make(T::opaque);
    o->tag = pending_array_tag;
    return o;
  }
  if (impl::is(fn, "._frombuffer")) {  // (buffer, dtype, shape, order)
    if (a.size() != 4 || !a[3]->is(T::string)) u.fail("_frombuffer needs (buffer, dtype, shape, order)");
    return impl::array(u, u.make(T::opaque), impl::dtype_arg(u, a[1], "_frombuffer"), impl::shape_of(u, *a[2]), a[3]->s == "F", *a[0], sink);
  }
  if (impl::is(fn, ".scalar")) {  // (dtype, bytes)
    if (a.size() != 2) u.fail("numpy scalar needs (dtype, data)");
    const Object& d = impl::dtype_arg(u, a[0], "numpy scalar");
    Object* out = u.make(T::none);
    if (!a[1]->is(T::bytes)) return impl::refuse(out, "NumPy scalar of dtype '" + d.s + "' holds a " + pickle::type_name(*a[1]) + ", not its bytes");
    std::string b = a[1]->s;
    if (d.i) return impl::refuse(out, "NumPy scalar of a structured dtype is not read");
    const char kind = d.s.empty() ? '?' : d.s[0];
    if (kind == 'U' || kind == 'S') {  // str_ (UTF-32) and bytes_, NUL-padded
      if (kind == 'S') {
        while (!b.empty() && b.back() == '\0') b.pop_back();
        return u.make_string(std::move(b), T::bytes);
      }
      if (b.size() % 4) u.fail("NumPy str_ scalar of " + std::to_string(b.size()) + " bytes");
      std::string s;
      for (std::size_t k = 0; k < b.size(); k += 4) {
        std::uint32_t cp = 0;
        for (std::size_t j = 0; j < 4; ++j) cp |= static_cast<std::uint32_t>(static_cast<unsigned char>(b[k + (d.flag ? 3 - j : j)])) << (8 * j);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) u.fail("NumPy str_ scalar holds an invalid code point");
        pickle::append_utf8(s, cp);
      }
      while (!s.empty() && s.back() == '\0') s.pop_back();
      return u.make_string(std::move(s));
    }
    const auto dt = dtype_of_code(d.s);
    if (!dt) return impl::refuse(out, "NumPy scalar of dtype '" + d.s + "' has no JSON value");
    const std::size_t es = element_size(*dt);
    if (b.size() != es) u.fail("NumPy scalar of dtype '" + d.s + "' with " + std::to_string(b.size()) + " bytes");
    if (d.flag) detail::byteswap_elements(std::as_writable_bytes(std::span(b.data(), b.size())), *dt == DType::c64 || *dt == DType::c128 ? es / 2 : es);
    auto get = [&]<class V>(V, std::size_t off) {
      V v;
      std::memcpy(&v, b.data() + off, sizeof v);
      return v;
    };
    switch (*dt) {
      case DType::boolean: out->type = T::boolean; out->flag = b[0] != 0; return out;
      case DType::i8: return u.make_int(get(std::int8_t{}, 0));
      case DType::i16: return u.make_int(get(std::int16_t{}, 0));
      case DType::i32: return u.make_int(get(std::int32_t{}, 0));
      case DType::i64: return u.make_int(get(std::int64_t{}, 0));
      case DType::u8: return u.make_int(get(std::uint8_t{}, 0));
      case DType::u16: return u.make_int(get(std::uint16_t{}, 0));
      case DType::u32: return u.make_int(get(std::uint32_t{}, 0));
      case DType::u64: {
        const auto v = get(std::uint64_t{}, 0);
        out->type = T::integer;
        if (v >> 63) {
          out->flag = true;
          out->u = v;
        } else {
          out->i = static_cast<std::int64_t>(v);
        }
        return out;
      }
      case DType::f16: out->f = static_cast<float>(float16::from_bits(get(std::uint16_t{}, 0))); break;
      case DType::f32: out->f = get(float{}, 0); break;
      case DType::f64: out->f = get(double{}, 0); break;
      case DType::c64:
      case DType::c128: {  // builtins.complex(re, im), as the default hooks read a Python complex
        Object* re = u.make(T::floating);
        Object* im = u.make(T::floating);
        re->f = *dt == DType::c64 ? get(float{}, 0) : get(double{}, 0);
        im->f = *dt == DType::c64 ? get(float{}, 4) : get(double{}, 8);
        Object* r = u.make_record(u.make_global("builtins.complex"));
        Object* pair = u.make(T::tuple);
        pair->items = {re, im};
        u.set_field(*r, pickle::field::args, pair);
        return r;
      }
      default: return impl::refuse(out, "NumPy scalar of dtype '" + d.s + "' has no JSON value");
    }
    out->type = T::floating;
    return out;
  }
  return nullptr;
}

/// BUILD on a NumPy dtype (its byte order; structured and sub-array dtypes are marked) or a
/// pending array (shape, dtype, order and bytes; handed to `sink`). False when `obj` is neither.
template <class U, class Sink>
bool build(U& u, Object& obj, Object& state, Sink&& sink) {
  using T = Object::Type;
  if (!obj.is(T::opaque) || (obj.tag != dtype_tag && obj.tag != pending_array_tag)) return false;
  const auto& s = state.items;
  if (!state.is(T::tuple)) u.fail("NumPy BUILD state is a " + pickle::type_name(state) + ", not a tuple");
  if (obj.tag == dtype_tag) {  // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
    if (s.size() < 5 || !s[1]->is(T::string)) u.fail("NumPy dtype state is not (version, byteorder, ...)");
    if (s[1]->s == ">") obj.flag = true;
    else if (s[1]->s == "<") obj.flag = false;
    if (!s[2]->is(T::none) || !s[3]->is(T::none)) obj.i = 1;  // sub-array or structured: not read
    return true;
  }
  // ndarray.__setstate__: (version, shape, dtype, is_fortran, data) or (shape, dtype, is_fortran, data)
  const std::size_t at = s.size() == 5 ? 1 : 0;
  if (s.size() != 4 && s.size() != 5) u.fail("NumPy array state with " + std::to_string(s.size()) + " items");
  if (!s[at + 2]->is(T::boolean) && !s[at + 2]->is(T::integer)) u.fail("NumPy array state: is_fortran is a " + pickle::type_name(*s[at + 2]));
  const bool fortran = s[at + 2]->is(T::boolean) ? s[at + 2]->flag : s[at + 2]->i != 0;
  impl::array(u, &obj, impl::dtype_arg(u, s[at + 1], "NumPy array"), impl::shape_of(u, *s[at]), fortran, *s[at + 3], sink);
  return true;
}

}  // namespace ckpt::detail::numpy_pickle
