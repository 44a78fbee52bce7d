// ckpt/detail/pickle_tree.hpp — the writing side of the .pt backend (archive/torch.hpp):
// `PickleTree` collects the OutputArchive events and emits the protocol-2 pickle torch.save
// would write for the same Python objects (the mapping is described at the top of
// torch_pickle.hpp). Records (pickle.hpp's fields: {"$class": ..., "$state": ...}), as dict
// nodes or inside JSON values, are written back as the Python object only where that gives the
// same object again and runs nothing unexpected on load: argparse.Namespace, set, frozenset,
// complex, bytes, bytearray, and {"$global": "torch.<dtype>"}. Any other record is written as the
// plain dict of its fields — so no tensor is lost and ckpt reads the same tree back — and is
// listed in dropped() ("key (class)"), for the caller to say so.
#pragma once

#include <algorithm>      // record fields
#include <charconv>       // int_dict keys
#include <memory>         // tree nodes
#include <string>         // names
#include <unordered_map>  // child index
#include <vector>         // children

#include "../dtype.hpp"       // torch dtype / storage names
#include "../error.hpp"       // unsupported_error
#include "../state_dict.hpp"  // KeyPath, Container, Value
#include "../tensor.hpp"      // Shape, checked_numel
#include "base64.hpp"         // "$base64" of bytes records
#include "pickle.hpp"         // record field names
#include "pickle_write.hpp"   // Pickler
#include "skeleton.hpp"       // max_tree_depth

namespace ckpt::detail::torch_pickle {

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
    n.children.clear();
    n.index.clear();
    if (holds_record(v)) return explode(n, v);  // records are written from nodes
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

  /// The pickle; dropped() then lists the records it wrote as plain dicts.
  std::vector<std::byte> pickle() {
    dropped_.clear();
    pickle::Pickler pk;
    emit(pk, root_, {});
    return pk.finish();
  }
  /// Records written as plain dicts (not the Python object they stand for): "key (class)".
  const std::vector<std::string>& dropped() const { return dropped_; }

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
  static bool holds_record(const Value& v, std::size_t depth = 0) {
    if (depth > 2 * max_tree_depth) return false;
    if (record::is_record(v)) return true;
    if (v.is_object() || v.is_array())
      for (const auto& x : v) if (holds_record(x, depth + 1)) return true;
    return false;
  }
  // A JSON value as nodes: objects -> dict nodes, arrays -> list nodes (what pk.value writes).
  void explode(Node& n, const Value& v) {
    if (!v.is_object() && !v.is_array()) {
      n.kind = Node::value;
      n.v = v;
      return;
    }
    n.kind = Node::dict;
    n.container = v.is_array() ? Container::list : Container::dict;
    std::size_t i = 0;
    for (auto it = v.begin(); it != v.end(); ++it, ++i) {
      std::string key = v.is_array() ? std::to_string(i) : it.key();
      n.index.emplace(key, n.children.size());
      n.children.emplace_back(std::move(key), std::make_unique<Node>());
      explode(*n.children.back().second, *it);
    }
  }
  const Node* child(const Node& n, std::string_view key) const {
    auto it = n.index.find(std::string(key));
    return it == n.index.end() ? nullptr : n.children[it->second].second.get();
  }
  // A child that is a string value, or nullptr.
  const std::string* string_child(const Node& n, std::string_view key) const {
    const Node* c = child(n, key);
    return c && c->kind == Node::value && c->v.is_string() ? &c->v.get_ref<const std::string&>() : nullptr;
  }
  static bool is_list(const Node* c) {
    return c && ((c->kind == Node::dict && c->container == Container::list) || (c->kind == Node::value && c->v.is_array()));
  }
  static bool is_torch_dtype(std::string_view name) {
    return std::any_of(detail::dtype_table.begin(), detail::dtype_table.end(), [&](const auto& i) { return i.torch == name; });
  }
  // Write record node `n` back as its object when that round-trips; false to write it as a dict.
  bool emit_record(pickle::Pickler& pk, const Node& n, const KeyPath& p) {
    namespace f = pickle::field;
    const std::string* cls = string_child(n, f::cls);
    const std::string* glob = string_child(n, f::global);
    auto only = [&](std::initializer_list<std::string_view> keys) {
      for (const auto& [k, c] : n.children)
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) return false;
      return true;
    };
    if (glob && n.children.size() == 1 && glob->starts_with("torch.") && is_torch_dtype(std::string_view(*glob).substr(6))) {
      pk.global("torch", glob->substr(6));
      return true;
    }
    if (!cls) return false;
    if (*cls == "argparse.Namespace" && only({f::cls, f::state})) {
      const Node* st = child(n, f::state);
      if (st && !((st->kind == Node::dict && st->container == Container::dict) || (st->kind == Node::value && st->v.is_object()))) return false;
      pk.global("argparse", "Namespace");  // copyreg.__newobj__: NEWOBJ, then BUILD with __dict__
      pk.tuple_n(0);
      pk.newobj();
      if (st) {
        emit(pk, *st, p / std::string(f::state));
        pk.build();
      }
      return true;
    }
    if ((*cls == "builtins.set" || *cls == "builtins.frozenset") && only({f::cls, f::items})) {
      const Node* items = child(n, f::items);
      if (items && !is_list(items)) return false;
      pk.global("__builtin__", cls->substr(9));
      if (items) emit(pk, *items, p / std::string(f::items));
      else pk.empty_list();
      pk.tuple_n(1);
      pk.reduce();
      return true;
    }
    if (*cls == "builtins.complex" && only({f::cls, f::args})) {
      const Node* a = child(n, f::args);
      std::vector<const Value*> parts;  // (real, imag): a list node of two numbers or a JSON array
      if (a && a->kind == Node::value && a->v.is_array())
        for (const auto& x : a->v) parts.push_back(&x);
      else if (a && a->kind == Node::dict)
        for (const auto& [k, c] : a->children) parts.push_back(c->kind == Node::value ? &c->v : nullptr);
      if (parts.size() != 2 || !parts[0] || !parts[1] || !parts[0]->is_number() || !parts[1]->is_number()) return false;
      pk.global("__builtin__", "complex");
      for (const Value* x : parts) pk.floating(x->get<double>());
      pk.tuple_n(2);
      pk.reduce();
      return true;
    }
    if ((*cls == "builtins.bytes" || *cls == "builtins.bytearray") && only({f::cls, f::base64})) {
      const std::string* b64 = string_child(n, f::base64);
      const auto raw = b64 ? base64_decode(*b64) : std::nullopt;
      if (!raw) return false;
      const bool array = *cls == "builtins.bytearray";
      if (array) pk.global("__builtin__", "bytearray");
      if (raw->empty()) {  // as pickle.py: bytes() / _codecs.encode(latin-1 text, 'latin1')
        pk.global("__builtin__", "bytes");
        pk.tuple_n(0);
      } else {
        std::string text;
        for (std::byte b : *raw) pickle::append_utf8(text, static_cast<std::uint8_t>(b));
        pk.global("_codecs", "encode");
        pk.string(text);
        pk.string("latin1");
        pk.tuple_n(2);
      }
      pk.reduce();
      if (array) {
        pk.tuple_n(1);
        pk.reduce();
      }
      return true;
    }
    return false;
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
  void emit(pickle::Pickler& pk, const Node& n, const KeyPath& p) {
    switch (n.kind) {
      case Node::value: pk.value(n.v, p.str()); return;
      case Node::tensor: emit_tensor(pk, n); return;
      case Node::dict: break;
    }
    if (n.container == Container::dict && (child(n, pickle::field::cls) || child(n, pickle::field::global)) &&
        std::all_of(n.children.begin(), n.children.end(), [](const auto& c) { return pickle::field::is_field(c.first); })) {
      if (emit_record(pk, n, p)) return;
      const std::string* cls = string_child(n, pickle::field::cls);
      const std::string* glob = string_child(n, pickle::field::global);
      dropped_.push_back((p.empty() ? std::string("(root)") : p.str()) + " (" + (cls ? *cls : glob ? *glob : std::string("a call's result")) + ")");
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
  std::vector<std::string> dropped_;
};

}  // namespace ckpt::detail::torch_pickle
