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

#include <charconv>       // int_dict keys
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
#include "pickle_write.hpp"   // Pickler
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
};

/// A tensor as the pickle describes it: a strided view of a storage.
struct TensorRecord {
  std::size_t storage = 0;
  DType dtype = DType::f32;
  std::uint64_t offset = 0;  ///< in elements
  Shape shape;
  std::vector<std::int64_t> stride;
};

inline constexpr std::uint32_t storage_tag = 1, tensor_tag = 2;

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

/// Restricted-unpickler hooks for torch.save pickles (zip format, or legacy with `legacy`).
class Hooks final : public pickle::Hooks {
 public:
  explicit Hooks(bool legacy = false) : legacy_(legacy) {}

  bool allow_global(std::string_view module, std::string_view name) const override {
    if (module == "collections") return name == "OrderedDict";
    if (module == "torch._utils")
      return name == "_rebuild_tensor" || name == "_rebuild_tensor_v2" || name == "_rebuild_tensor_v3" ||
             name == "_rebuild_parameter" || name == "_rebuild_parameter_with_state";
    if (module == "torch.storage" || module == "torch") {
      if (name == "UntypedStorage") return true;
      if (module == "torch.storage") return false;
      return name == "Size" || dtype_of_storage_class(name) || dtype_of_torch_name(name);
    }
    if (module == "torch.cuda") return dtype_of_storage_class(name).has_value();  // torch < 1.10 named CUDA storages so
    if (module == "_codecs") return name == "encode";  // how protocol 2 spells bytes
    return false;
  }
  std::string allowed_globals() const override {
    return "collections.OrderedDict, torch._utils._rebuild_tensor_v2/_v3, torch._utils._rebuild_parameter, "
           "torch.<T>Storage, torch.storage.UntypedStorage, torch.<dtype>, torch.Size, _codecs.encode";
  }

  Object* call(pickle::Unpickler& u, Object& fn, Object& args) override {
    const auto& a = args.items;
    const std::string& f = fn.s;
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
    if (f == "_codecs.encode") {  // (str, "latin1") -> bytes
      if (a.size() != 2 || !a[0]->is(Object::Type::string) || !a[1]->is(Object::Type::string)) u.fail("_codecs.encode needs (str, encoding)");
      std::string out;
      if (a[1]->s == "latin1" || a[1]->s == "latin-1") {
        const std::string& s = a[0]->s;
        for (std::size_t k = 0; k < s.size(); ++k) {
          const auto c = static_cast<unsigned char>(s[k]);
          if (c < 0x80) out += static_cast<char>(c);
          else if ((c & 0xe0) == 0xc0 && c <= 0xc3 && k + 1 < s.size()) out += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[++k]) & 0x3f));
          else u.fail("_codecs.encode: character outside latin-1");
        }
      } else if (a[1]->s == "utf-8" || a[1]->s == "utf8") {
        out = a[0]->s;
      } else {
        u.fail("_codecs.encode: unsupported encoding '" + a[1]->s + "'");
      }
      return u.make_string(std::move(out), Object::Type::bytes);
    }
    return pickle::Hooks::call(u, fn, args);
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
    Storage s{a[2]->s, *dt, numel * es, 0};
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
  bool legacy_;
  std::unordered_map<std::string, std::size_t> by_id_;
};

// ---- unpickled object -> skeleton --------------------------------------------------------------

/// Largest number of values one pickle may expand to (shared references count each time).
inline constexpr std::uint64_t max_converted_values = std::uint64_t{1} << 20;

/// Maps an unpickled object to a skeleton (detail/skeleton.hpp); `entries[k]` is the k-th tensor leaf and
/// `entry_tensor[k]` its index in Hooks::tensors.
class SkeletonFromPickle {
 public:
  SkeletonFromPickle(const Hooks& h, std::string file) : h_(h), file_(std::move(file)) {}

  /// The skeleton node for `o` at path `p`. The root and every dict that is empty, has int
  /// keys, or holds a tensor or an int-keyed dict anywhere become dict nodes; lists and tuples
  /// that hold one become list nodes; everything else becomes a JSON value leaf.
  Value convert(const Object& o, const KeyPath& p = {}, std::size_t depth = 0) {
    count(p, depth);
    switch (o.type) {
      case Object::Type::opaque: {
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
      case Object::Type::dict: {
        if (depth > 0 && o.dict_size() > 0 && !needs_node(o, p, depth)) return Value{{"value", to_json(o, p, depth)}};
        const bool int_keys = key_kind(o, p) == 'i';
        Value items = Value::array();
        for (std::size_t k = 0; k < o.dict_size(); ++k) {
          const Object& key = *o.items[2 * k];
          std::string ks = key.is(Object::Type::string) ? key.s : key.flag ? std::to_string(key.u) : std::to_string(key.i);
          Value child = convert(*o.items[2 * k + 1], p / ks, depth + 1);
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
    if (o.is(Object::Type::opaque)) return true;
    const bool dict = o.is(Object::Type::dict);
    if (!dict && !o.is(Object::Type::list) && !o.is(Object::Type::tuple)) return false;
    if (auto it = needs_node_.find(&o); it != needs_node_.end()) return it->second;
    count(p, depth);
    bool r = dict && key_kind(o, p) == 'i';
    for (std::size_t k = dict ? 1 : 0; !r && k < o.items.size(); k += dict ? 2 : 1) r = needs_node(*o.items[k], p, depth + 1);
    needs_node_.emplace(&o, r);
    return r;
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
      case Object::Type::dict: {  // str keys only (int-keyed dicts are nodes)
        Value d = Value::object();
        for (std::size_t k = 0; k < o.dict_size(); ++k) {
          const Object& key = *o.items[2 * k];
          if (!key.is(Object::Type::string)) throw unsupported_error("dict key of type " + pickle::type_name(key) + " is not supported (only str or int keys)", file_, p.str());
          d[key.s] = to_json(*o.items[2 * k + 1], p / key.s, depth + 1);
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

// ---- OutputArchive events -> pickle --------------------------------------------------------------

/// Collects the tree an OutputArchive receives and emits it as the pickle torch.save writes.
class PickleTree {
 public:
  explicit PickleTree(std::string file) : file_(std::move(file)) {}

  void begin_group(const KeyPath& p, Container c) {
    Node& n = at(p);
    n.kind = Node::dict;
    n.container = c;
  }
  void value(const KeyPath& p, const Value& v) {
    Node& n = at(p);
    n.kind = Node::value;
    n.v = v;
  }
  /// A tensor leaf whose bytes are storage record `key` (numel elements of `dtype`).
  void tensor(const KeyPath& p, DType dtype, const Shape& shape, std::string key) {
    Node& n = at(p);
    n.kind = Node::tensor;
    n.dtype = dtype;
    n.shape = shape;
    n.key = std::move(key);
  }

  std::vector<std::byte> pickle() const {
    pickle::Pickler pk;
    emit(pk, root_, {});
    return pk.finish();
  }

 private:
  struct Node {
    enum Kind { dict, tensor, value } kind = dict;
    Container container = Container::dict;
    std::vector<std::pair<std::string, std::unique_ptr<Node>>> children;
    std::unordered_map<std::string, std::size_t> index;
    DType dtype = DType::f32;
    Shape shape;
    std::string key;
    Value v;
  };
  // The node at p, creating dict nodes on the way (and p itself).
  Node& at(const KeyPath& p) {
    Node* n = &root_;
    for (const auto& k : p.keys()) {
      if (n->kind != Node::dict) throw unsupported_error("cannot nest under a leaf", file_, p.str());
      auto it = n->index.find(k);
      if (it == n->index.end()) {
        it = n->index.emplace(k, n->children.size()).first;
        n->children.emplace_back(k, std::make_unique<Node>());
      }
      n = n->children[it->second].second.get();
    }
    return *n;
  }
  static Shape contiguous_stride(const Shape& shape) {
    Shape s(shape.size());
    std::int64_t acc = 1;
    for (std::size_t k = shape.size(); k-- > 0;) {
      s[k] = acc;
      acc *= shape[k] > 1 ? shape[k] : 1;
    }
    return s;
  }
  static void int_tuple(pickle::Pickler& pk, const Shape& v) {
    if (v.size() <= 3) {
      for (auto x : v) pk.integer(x);
      pk.tuple_n(v.size());
      return;
    }
    pk.mark();
    for (auto x : v) pk.integer(x);
    pk.tuple_from_mark();
  }
  void emit_tensor(pickle::Pickler& pk, const Node& n) const {
    const auto& info = detail::info(n.dtype);
    const bool typed = !info.torch_storage.empty();  // else torch >= 2.1's v3 form (uint16, float8, ...)
    const auto numel = checked_numel(n.shape).value_or(0);
    pk.global("torch._utils", typed ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
    pk.mark();
    {  // persistent id ('storage', class, key, 'cpu', numel)
      pk.mark();
      pk.string("storage");
      if (typed) pk.global("torch", info.torch_storage);
      else pk.global("torch.storage", "UntypedStorage");
      pk.string(n.key);
      pk.string("cpu");
      pk.integer(typed ? numel : numel * static_cast<std::int64_t>(info.size));
      pk.tuple_from_mark();
      pk.binpersid();
    }
    pk.integer(0);  // storage_offset
    int_tuple(pk, n.shape);
    int_tuple(pk, contiguous_stride(n.shape));
    pk.boolean(false);  // requires_grad
    pk.global("collections", "OrderedDict");  // backward_hooks = OrderedDict()
    pk.tuple_n(0);
    pk.reduce();
    if (!typed) pk.global("torch", info.torch);
    pk.tuple_from_mark();
    pk.reduce();
  }
  void emit(pickle::Pickler& pk, const Node& n, const KeyPath& p) const {
    switch (n.kind) {
      case Node::value: pk.value(n.v, p.str()); return;
      case Node::tensor: emit_tensor(pk, n); return;
      case Node::dict: break;
    }
    if (n.container == Container::list) {
      pk.empty_list();
      if (n.children.empty()) return;
      pk.mark();
      for (std::size_t k = 0; k < n.children.size(); ++k) {
        if (n.children[k].first != std::to_string(k))
          throw unsupported_error("list node keys must be 0, 1, 2, ... in order (expected key " + std::to_string(k) + ")", file_, (p / n.children[k].first).str());
        emit(pk, *n.children[k].second, p / n.children[k].first);
      }
      pk.appends();
      return;
    }
    pk.empty_dict();
    if (n.children.empty()) return;
    pk.mark();
    for (const auto& [key, child] : n.children) {
      if (n.container == Container::int_dict) {
        std::int64_t v = 0;
        auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), v);
        if (ec != std::errc() || ptr != key.data() + key.size() || std::to_string(v) != key)
          throw unsupported_error("key of an int_dict node is not a decimal integer", file_, (p / key).str());
        pk.integer(v);
      } else {
        pk.string(key, (p / key).str());
      }
      emit(pk, *child, p / key);
    }
    pk.setitems();
  }

  std::string file_;
  Node root_;
};

}  // namespace ckpt::detail::torch_pickle
