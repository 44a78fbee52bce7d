// ckpt/detail/torch_pickle.hpp — what torch.save's pickle means, on both sides, for the .pt
// backend (archive/torch.hpp):
//   reading: Hooks for the restricted unpickler that allow only the globals torch's
//     `weights_only` loader allows for state dicts (OrderedDict, _rebuild_tensor_v2/_v3,
//     _rebuild_parameter, storage classes, dtypes, torch.Size) and record storages and tensor
//     views instead of building anything; `SkeletonFromPickle` maps the unpickled object to a
//     StateDict skeleton (detail/skeleton.hpp) plus the list of tensor entries;
//   writing: `PickleTree` collects the OutputArchive events and emits the protocol-2 pickle
//     torch.save would write for the same Python objects.
// Python -> StateDict: a dict (or OrderedDict) becomes a dict node when it is the root, is
// empty, or holds a tensor or an int-keyed dict anywhere; a dict with int keys becomes an
// int_dict node (keys as decimal strings); a list/tuple holding a tensor or an int-keyed dict
// becomes a list node (keys "0", "1", ...); everything else — None, bool, int, float, str and
// lists/tuples/str-keyed dicts of them — becomes a JSON value leaf. Writing reverses this:
// dict nodes and JSON objects become dicts, int_dict nodes dicts with int keys, list nodes and
// JSON arrays lists. So int keys survive; tuples come back as lists; OrderedDicts as dicts
// (their `_metadata` attribute is dropped); and a dict node holding only values comes back as
// a JSON object value.
#pragma once

#include <map>            // inline storages
#include <memory>         // tree nodes
#include <optional>       // dtype lookups
#include <string>         // names
#include <unordered_map>  // storage keys, object caches
#include <vector>         // records

#include "../concepts.hpp"    // EntryInfo
#include "../dtype.hpp"       // torch dtype / storage names
#include "../error.hpp"       // format_error, unsupported_error
#include "../state_dict.hpp"  // KeyPath, Container, Value
#include "../tensor.hpp"      // Shape, checked_nbytes
#include "base64.hpp"         // bytes values
#include "numpy_pickle.hpp"   // NumPy scalars and arrays
#include "skeleton.hpp"       // max_tree_depth
#include "unpickle.hpp"       // Unpickler, Hooks, Object

namespace ckpt::detail::torch_pickle {

using pickle::Object;

/// A storage a persistent id names.
struct Storage {
  std::string key;               ///< record name: data/<key> (legacy: the root storage's key)
  DType dtype = DType::u8;       ///< element type (u8 for an UntypedStorage)
  std::uint64_t nbytes = 0;      ///< declared size in bytes
  std::uint64_t byte_offset = 0; ///< legacy views: where this storage starts in its root
  /// A NumPy array's elements, which the pickle itself holds (then there is no record).
  std::shared_ptr<const std::string> inline_bytes;
  bool big_endian = false;       ///< inline bytes only: stored big-endian (records follow the file's byteorder)
};

/// A tensor as the pickle describes it: a strided view of a storage.
struct TensorRecord {
  std::size_t storage = 0;
  DType dtype = DType::f32;
  std::uint64_t offset = 0;  ///< in elements
  Shape shape;
  std::vector<std::int64_t> stride;
};

inline constexpr std::uint32_t storage_tag = 1, tensor_tag = 2;  // numpy_pickle.hpp's tags are 3 and up

/// The dtype a torch storage class stands for ("FloatStorage" -> f32), or nullopt.
inline std::optional<DType> dtype_of_storage_class(std::string_view cls) {
  for (const auto& i : detail::dtype_table)
    if (!i.torch_storage.empty() && i.torch_storage == cls) return i.type;
  return std::nullopt;
}
/// The dtype a `torch.<name>` global stands for (torch.float32, torch.uint16, ...).
inline std::optional<DType> dtype_of_torch_name(std::string_view name) {
  for (const auto& i : detail::dtype_table)
    if (i.torch == name) return i.type;
  return std::nullopt;
}

/// Restricted-unpickler hooks for torch.save pickles (zip format, or legacy with `legacy`); with
/// `inert`, other globals become inert records (LoadOptions::inert_objects).
class Hooks final : public pickle::Hooks {
 public:
  explicit Hooks(bool legacy = false, bool inert = false) : legacy_(legacy) { inert_objects = inert; }

  bool allow_global(std::string_view module, std::string_view name) const override {
    if (numpy_pickle::allow_global(module, name)) return true;
    if (module == "torch._utils")
      return name == "_rebuild_tensor" || name == "_rebuild_tensor_v2" || name == "_rebuild_tensor_v3" ||
             name == "_rebuild_parameter" || name == "_rebuild_parameter_with_state";
    if (module == "torch.storage" || module == "torch") {
      if (name == "UntypedStorage") return true;
      if (module == "torch.storage") return false;
      return name == "Size" || dtype_of_storage_class(name) || dtype_of_torch_name(name);
    }
    if (module == "torch.cuda") return dtype_of_storage_class(name).has_value();  // torch < 1.10 named CUDA storages so
    return pickle::Hooks::allow_global(module, name);
  }
  std::string allowed_globals() const override {
    return "torch._utils._rebuild_tensor_v2/_v3, torch._utils._rebuild_parameter, torch.<T>Storage, "
           "torch.storage.UntypedStorage, torch.<dtype>, torch.Size, " + std::string(numpy_pickle::allowed_globals) + ", " +
           pickle::Hooks::allowed_globals();
  }

  Object* call(pickle::Unpickler& u, Object& fn, Object& args) override {
    const auto& a = args.items;
    const std::string& f = fn.s;
    if (Object* r = numpy_pickle::call(u, fn, args, [this](Object& o, const numpy_pickle::Array& a) { add_array(o, a); })) return r;
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor_v3" || f == "torch._utils._rebuild_tensor") {
      const bool v3 = f.back() == '3', v1 = f.back() == 'r';
      const std::size_t need = v1 ? 4 : v3 ? 7 : 6;
      if (a.size() < need || a.size() > need + 1) u.fail("'" + f + "' called with " + std::to_string(a.size()) + " arguments");
      if (!a[0]->is(Object::Type::opaque) || a[0]->tag != storage_tag) u.fail("'" + f + "': first argument is a " + pickle::type_name(*a[0]) + ", not a storage");
      TensorRecord t;
      t.storage = static_cast<std::size_t>(a[0]->i);
      t.dtype = storages[t.storage].dtype;
      t.offset = non_negative(u, *a[1], "storage_offset");
      t.shape = int_tuple(u, *a[2], "size");
      t.stride = int_tuple(u, *a[3], "stride");
      if (t.shape.size() != t.stride.size()) u.fail("tensor size and stride have different lengths");
      if (v3) {
        const Object& d = *a[6];
        auto dt = d.is(Object::Type::global) && d.s.starts_with("torch.") ? dtype_of_torch_name(d.s.substr(6)) : std::nullopt;
        if (!dt) u.fail("'" + f + "': dtype argument is a " + pickle::type_name(d));
        t.dtype = *dt;
      }
      Object* o = u.make(Object::Type::opaque);
      o->tag = tensor_tag;
      o->i = static_cast<std::int64_t>(tensors.size());
      tensors.push_back(std::move(t));
      return o;
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      if (a.size() < 3 || a.size() > 4 || !a[0]->is(Object::Type::opaque) || a[0]->tag != tensor_tag) u.fail("'" + f + "' needs a tensor");
      return a[0];  // a Parameter is its tensor; requires_grad and hooks do not matter here
    }
    if (f == "torch.Size") {
      if (a.size() != 1 || !(a[0]->is(Object::Type::tuple) || a[0]->is(Object::Type::list))) u.fail("torch.Size needs one sequence");
      Object* o = u.make(Object::Type::tuple);
      o->items = a[0]->items;
      return o;
    }
    return pickle::Hooks::call(u, fn, args);
  }
  void build(pickle::Unpickler& u, Object& obj, Object& state) override {
    if (!numpy_pickle::build(u, obj, state, [this](Object& o, const numpy_pickle::Array& a) { add_array(o, a); })) pickle::Hooks::build(u, obj, state);
  }

  /// ('storage', storage_class, key, location, numel) — and for legacy files a sixth item,
  /// view_metadata: None or (view_key, offset, size) for a view of the root storage.
  Object* persistent_load(pickle::Unpickler& u, Object& pid) override {
    const auto& a = pid.items;
    if (!pid.is(Object::Type::tuple) || a.empty() || !a[0]->is(Object::Type::string)) u.fail("persistent id is not a ('storage', ...) tuple");
    if (a[0]->s != "storage") u.fail("persistent id of kind '" + a[0]->s + "' is not supported (only 'storage')");
    if (a.size() != (legacy_ ? 6u : 5u)) u.fail("storage persistent id with " + std::to_string(a.size()) + " items");
    if (!a[1]->is(Object::Type::global) || !a[2]->is(Object::Type::string) || !a[3]->is(Object::Type::string))
      u.fail("storage persistent id needs (storage class, key, location)");
    const std::string& cls = a[1]->s;
    std::optional<DType> dt;
    bool untyped = false;
    if (cls == "torch.UntypedStorage" || cls == "torch.storage.UntypedStorage") {
      dt = DType::u8;
      untyped = true;
    } else if (auto dot = cls.rfind('.'); dot != std::string::npos) {
      dt = dtype_of_storage_class(std::string_view(cls).substr(dot + 1));
    }
    if (!dt) u.fail("'" + cls + "' is not a storage class");
    const std::uint64_t numel = non_negative(u, *a[4], "storage size");
    const std::uint64_t es = untyped ? 1 : element_size(*dt);
    if (numel > (std::uint64_t{1} << 62) / es) u.fail("storage size out of range");
    Storage s;
    s.key = a[2]->s;
    s.dtype = *dt;
    s.nbytes = numel * es;
    std::string id = s.key;
    if (legacy_ && !a[5]->is(Object::Type::none)) {  // a view: (view_key, offset, size) in elements
      const auto& v = a[5]->items;
      if (!a[5]->is(Object::Type::tuple) || v.size() != 3 || !v[0]->is(Object::Type::string)) u.fail("bad storage view metadata");
      const auto off = non_negative(u, *v[1], "view offset"), size = non_negative(u, *v[2], "view size");
      if (off > numel || size > numel - off) u.fail("storage view outside its storage");
      s.byte_offset = off * es;
      s.nbytes = size * es;
      id = "view:" + v[0]->s;
    }
    const std::uint64_t root_bytes = numel * es;  // the root storage's size (the whole storage unless a view)
    if (auto [r, fresh] = root_sizes.try_emplace(s.key, root_bytes); !fresh && r->second != root_bytes)
      u.fail("storage '" + s.key + "' declared with two sizes");
    auto [it, inserted] = by_id_.try_emplace(id, storages.size());
    if (inserted) {
      if (storages.size() >= (std::size_t{1} << 24)) u.fail("too many storages");
      storages.push_back(std::move(s));
    } else {
      const Storage& old = storages[it->second];
      if (old.dtype != s.dtype || old.nbytes != s.nbytes || old.byte_offset != s.byte_offset) u.fail("storage '" + s.key + "' declared twice with different types or sizes");
    }
    Object* o = u.make(Object::Type::opaque);
    o->tag = storage_tag;
    o->i = static_cast<std::int64_t>(it->second);
    return o;
  }

  std::vector<Storage> storages;
  std::vector<TensorRecord> tensors;
  std::unordered_map<std::string, std::uint64_t> root_sizes;  ///< record key -> declared bytes

 private:
  static std::uint64_t non_negative(pickle::Unpickler& u, const Object& o, const char* what) {
    if (!o.is(Object::Type::integer) || o.flag || o.i < 0) u.fail(std::string(what) + " is not a non-negative int");
    return static_cast<std::uint64_t>(o.i);
  }
  static std::vector<std::int64_t> int_tuple(pickle::Unpickler& u, const Object& o, const char* what) {
    if (!(o.is(Object::Type::tuple) || o.is(Object::Type::list))) u.fail(std::string(what) + " is a " + pickle::type_name(o) + ", not a tuple");
    if (o.items.size() > 64) u.fail(std::string(what) + " has more than 64 dimensions");
    std::vector<std::int64_t> r;
    for (const Object* x : o.items) r.push_back(static_cast<std::int64_t>(non_negative(u, *x, what)));
    return r;
  }
  // Turns a NumPy array into a tensor over an inline storage holding its bytes: one storage per
  // bytes object and byte order, so arrays sharing their bytes (through the memo) share it.
  void add_array(Object& o, const numpy_pickle::Array& a) {
    auto [it, fresh] = inline_storage_.try_emplace({a.data, a.big_endian}, storages.size());
    if (fresh) {
      Storage s;
      s.dtype = a.dtype;
      s.nbytes = a.data->size();
      s.inline_bytes = std::make_shared<const std::string>(*a.data);
      s.big_endian = a.big_endian;
      storages.push_back(std::move(s));
    }
    o.type = Object::Type::opaque;
    o.tag = tensor_tag;
    o.i = static_cast<std::int64_t>(tensors.size());
    tensors.push_back({it->second, a.dtype, 0, a.shape, a.stride});
  }
  bool legacy_;
  std::unordered_map<std::string, std::size_t> by_id_;
  std::map<std::pair<const std::string*, bool>, std::size_t> inline_storage_;  // (bytes, big-endian) -> storage
};

// ---- unpickled object -> skeleton --------------------------------------------------------------

/// Largest number of values one pickle may expand to (shared references count each time).
inline constexpr std::uint64_t max_converted_values = std::uint64_t{1} << 20;

/// Maps an unpickled object to a skeleton (detail/skeleton.hpp); `entries[k]` is the k-th tensor leaf and
/// `entry_tensor[k]` its index in Hooks::tensors.
class SkeletonFromPickle {
 public:
  SkeletonFromPickle(const Hooks& h, std::string file) : h_(h), file_(std::move(file)) {}

  /// The skeleton node for `o` at path `p`. The root and every dict or record that is empty,
  /// has int keys, or holds a tensor or an int-keyed dict anywhere become dict nodes (a record's
  /// keys are its fields, "$class" ...); lists and tuples that hold one become list nodes;
  /// everything else becomes a JSON value leaf.
  Value convert(const Object& o, const KeyPath& p = {}, std::size_t depth = 0) {
    count(p, depth);
    switch (o.type) {
      case Object::Type::opaque: {
        if (o.tag == numpy_pickle::dtype_tag) return Value{{"value", to_json(o, p, depth)}};
        if (o.tag == numpy_pickle::refused_tag) throw unsupported_error(o.s, file_, p.str());
        if (o.tag == numpy_pickle::pending_array_tag) throw format_error("NumPy array without its state (no BUILD)", file_, format_error::no_offset, p.str());
        if (o.tag != tensor_tag) throw unsupported_error("a bare storage (not a tensor) is not supported", file_, p.str());
        const auto& t = h_.tensors[static_cast<std::size_t>(o.i)];
        EntryInfo e;
        e.path = p;
        e.dtype = t.dtype;
        e.shape = t.shape;
        auto nb = checked_nbytes(t.dtype, t.shape);
        if (!nb) throw format_error("tensor shape overflows", file_, format_error::no_offset, p.str(), "a size that fits in 64 bits", shape_string(t.shape));
        e.nbytes = e.stored_nbytes = *nb;
        entries.push_back(std::move(e));
        entry_tensor.push_back(static_cast<std::size_t>(o.i));
        return Value{{"tensor", entries.size() - 1}};
      }
      case Object::Type::record:
      case Object::Type::dict: {
        if (depth > 0 && o.dict_size() > 0 && !needs_node(o, p, depth)) return Value{{"value", to_json(o, p, depth)}};
        const bool int_keys = key_kind(o, p) == 'i';
        Value items = Value::array();
        for (std::size_t k = 0; k < o.dict_size(); ++k) {
          const Object& key = *o.items[2 * k];
          std::string ks = key.is(Object::Type::string) ? key.s : key.flag ? std::to_string(key.u) : std::to_string(key.i);
          const Object& v = *o.items[2 * k + 1];
          Value child = is_class_name(o, key, v) ? Value{{"value", v.s}} : convert(v, p / ks, depth + 1);
          items.push_back(Value::array({std::move(ks), std::move(child)}));
        }
        return Value{{"dict", std::move(items)}, {"container", int_keys ? "int_dict" : "dict"}};
      }
      case Object::Type::list:
      case Object::Type::tuple: {
        if (!needs_node(o, p, depth)) return Value{{"value", to_json(o, p, depth)}};
        Value items = Value::array();
        for (std::size_t k = 0; k < o.items.size(); ++k) {
          std::string ks = std::to_string(k);
          Value child = convert(*o.items[k], p / ks, depth + 1);
          items.push_back(Value::array({std::move(ks), std::move(child)}));
        }
        return Value{{"dict", std::move(items)}, {"container", "list"}};
      }
      default: return Value{{"value", to_json(o, p, depth)}};
    }
  }

  std::vector<EntryInfo> entries;
  std::vector<std::size_t> entry_tensor;

 private:
  void count(const KeyPath& p, std::size_t depth) {
    if (depth > max_tree_depth) throw format_error("pickle nested deeper than " + std::to_string(max_tree_depth) + " levels", file_, format_error::no_offset, p.str());
    if (++values_ > max_converted_values) throw format_error("pickle expands to more than " + std::to_string(max_converted_values) + " values", file_, format_error::no_offset, p.str());
  }
  // 's' (str keys or empty) or 'i' (int keys) for a dict; other keys are refused.
  char key_kind(const Object& d, const KeyPath& p) const {
    bool has_int = false, has_str = false;
    for (std::size_t k = 0; k < d.dict_size(); ++k) {
      const Object& key = *d.items[2 * k];
      if (key.is(Object::Type::string)) has_str = true;
      else if (key.is(Object::Type::integer)) has_int = true;
      else throw unsupported_error("dict key of type " + pickle::type_name(key) + " is not supported (only str or int keys)", file_, p.str());
    }
    if (has_int && has_str) throw unsupported_error("dict mixes int and str keys", file_, p.str());
    return has_int ? 'i' : 's';
  }
  // Does `o` hold a tensor or an int-keyed dict at any depth (or is one)? Those need nodes:
  // JSON has neither. Memoized per object, so shared references cost nothing extra.
  bool needs_node(const Object& o, const KeyPath& p, std::size_t depth) {
    if (o.is(Object::Type::opaque)) return o.tag != numpy_pickle::dtype_tag;  // a tensor (or what must be reported at its path)
    const bool dict = o.has_pairs();
    if (!dict && !o.is(Object::Type::list) && !o.is(Object::Type::tuple)) return false;
    if (auto it = needs_node_.find(&o); it != needs_node_.end()) return it->second;
    count(p, depth);
    bool r = dict && key_kind(o, p) == 'i';
    for (std::size_t k = dict ? 1 : 0; !r && k < o.items.size(); k += dict ? 2 : 1) r = needs_node(*o.items[k], p, depth + 1);
    needs_node_.emplace(&o, r);
    return r;
  }
  // A record's "$class" that is a global is written as its name ("argparse.Namespace").
  static bool is_class_name(const Object& o, const Object& key, const Object& v) {
    return o.is(Object::Type::record) && v.is(Object::Type::global) && key.s == pickle::field::cls;
  }
  Value to_json(const Object& o, const KeyPath& p, std::size_t depth) {
    count(p, depth);
    switch (o.type) {
      case Object::Type::none: return nullptr;
      case Object::Type::boolean: return o.flag;
      case Object::Type::integer: return o.flag ? Value(o.u) : Value(o.i);
      case Object::Type::floating: return o.f;
      case Object::Type::string: return o.s;
      case Object::Type::list:
      case Object::Type::tuple: {
        Value a = Value::array();
        for (const Object* x : o.items) a.push_back(to_json(*x, p, depth + 1));
        return a;
      }
      case Object::Type::bytes:  // {"$class": "builtins.bytes" | "builtins.bytearray", "$base64": "..."}
        return Value{{pickle::field::cls, o.flag ? "builtins.bytearray" : "builtins.bytes"},
                     {pickle::field::base64, base64_encode(std::as_bytes(std::span(o.s.data(), o.s.size())))}};
      case Object::Type::global: return Value{{pickle::field::global, o.s}};
      case Object::Type::opaque:  // only dtypes get here (needs_node sends the rest to convert)
        return Value{{pickle::field::cls, "numpy.dtype"}, {pickle::field::args, Value::array({std::string(o.flag ? ">" : "<") + o.s})}};
      case Object::Type::record:
      case Object::Type::dict: {  // str keys only (int-keyed dicts are nodes)
        Value d = Value::object();
        for (std::size_t k = 0; k < o.dict_size(); ++k) {
          const Object& key = *o.items[2 * k];
          if (!key.is(Object::Type::string)) throw unsupported_error("dict key of type " + pickle::type_name(key) + " is not supported (only str or int keys)", file_, p.str());
          const Object& v = *o.items[2 * k + 1];
          d[key.s] = is_class_name(o, key, v) ? Value(v.s) : to_json(v, p / key.s, depth + 1);
        }
        return d;
      }
      default: throw unsupported_error("value of type " + pickle::type_name(o) + " is not supported (only tensors, dicts, lists, tuples, str, int, float, bool, None)", file_, p.str());
    }
  }

  const Hooks& h_;
  std::string file_;
  std::uint64_t values_ = 0;
  std::unordered_map<const Object*, bool> needs_node_;
};

}  // namespace ckpt::detail::torch_pickle
