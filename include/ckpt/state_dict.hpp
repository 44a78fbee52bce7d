// ckpt/state_dict.hpp — the tree every checkpoint is. A StateDict node is a dict (ordered
// children), a tensor leaf or a JSON value leaf. Keys are strings; a dotted *path* addresses
// nested nodes, and a dot inside a key is escaped as "\." so that PyTorch's flat module keys
// ("0.weight") stay distinct from nesting ({"0": {"weight": ..}}). Also: KeyPath, LoadOptions,
// LoadReport.
#pragma once

#include <cstdint>          // container tags
#include <optional>         // LoadOptions::verify
#include <initializer_list>  // KeyPath{...}
#include <memory>           // std::unique_ptr in the index
#include <nlohmann/json.hpp>  // JSON value leaves
#include <string>           // keys
#include <string_view>      // path parsing
#include <type_traits>      // constructor constraints
#include <unordered_map>    // key -> position index
#include <utility>          // std::move
#include <variant>          // node payload
#include <vector>           // ordered children

#include "error.hpp"   // key_error, mismatch_error
#include "tensor.hpp"  // Tensor leaves

namespace ckpt {

using Value = nlohmann::json;

/// A key path: the sequence of keys from the root to a node. Its string form joins keys with
/// '.', escaping '.' and '\' inside a key with '\': {"model", "0.weight"} <-> "model.0\.weight".
class KeyPath {
 public:
  KeyPath() = default;
  KeyPath(std::initializer_list<std::string> keys) : keys_(keys) {}
  explicit KeyPath(std::vector<std::string> keys) : keys_(std::move(keys)) {}

  /// Parse the escaped dotted form. "" is the root.
  static KeyPath parse(std::string_view s) {
    KeyPath p;
    if (s.empty()) return p;
    std::string cur;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '.' || s[i + 1] == '\\')) {
        cur += s[++i];
      } else if (c == '.') {
        p.keys_.push_back(std::move(cur));
        cur.clear();
      } else {
        cur += c;
      }
    }
    p.keys_.push_back(std::move(cur));
    return p;
  }
  /// Escape one key for the dotted form.
  static std::string escape(std::string_view key) {
    std::string r;
    r.reserve(key.size());
    for (char c : key) {
      if (c == '.' || c == '\\') r += '\\';
      r += c;
    }
    return r;
  }
  /// The escaped dotted form; parse(str()) == *this.
  std::string str() const {
    std::string r;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
      if (i) r += '.';
      r += escape(keys_[i]);
    }
    return r;
  }
  /// The keys joined with '.' and no escaping — what flat formats (safetensors, npz) name an entry.
  std::string joined() const {
    std::string r;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
      if (i) r += '.';
      r += keys_[i];
    }
    return r;
  }

  const std::vector<std::string>& keys() const noexcept { return keys_; }
  std::size_t size() const noexcept { return keys_.size(); }
  bool empty() const noexcept { return keys_.empty(); }
  const std::string& back() const { return keys_.back(); }
  KeyPath operator/(std::string key) const {
    KeyPath p = *this;
    p.keys_.push_back(std::move(key));
    return p;
  }
  KeyPath operator/(const KeyPath& rest) const {
    KeyPath p = *this;
    p.keys_.insert(p.keys_.end(), rest.keys_.begin(), rest.keys_.end());
    return p;
  }
  friend bool operator==(const KeyPath&, const KeyPath&) = default;
  friend auto operator<=>(const KeyPath&, const KeyPath&) = default;

 private:
  std::vector<std::string> keys_;
};

/// What a dict node stood for where it came from, so formats that care can write it back:
/// a dict with string keys, a dict with integer keys (PyTorch optimizer "state"), or a list.
enum class Container : std::uint8_t { dict, int_dict, list };

inline std::string_view container_name(Container c) {
  return c == Container::dict ? "dict" : c == Container::int_dict ? "int_dict" : "list";
}
inline std::optional<Container> container_from_name(std::string_view s) {
  if (s == "dict") return Container::dict;
  if (s == "int_dict") return Container::int_dict;
  if (s == "list") return Container::list;
  return std::nullopt;
}

/// Options for every load.
struct LoadOptions {
  /// Missing or unexpected keys raise key_error (listing all of them); false returns a report.
  /// Readers too: a member of a file's own JSON (a native footer, a .json checkpoint, a
  /// safetensors tensor's info, an index) that they do not know is a format_error; false skips it.
  bool strict = true;
  /// A dtype/shape mismatch is skipped and reported instead of raising mismatch_error.
  bool skip_mismatched = false;
  /// Zero-copy: tensors view a shared read-only mapping of the file instead of owning memory.
  bool mmap = false;
  /// Verify checksums while loading. Default: on for eager loads, off for mmap loads.
  std::optional<bool> verify;
  /// PyTorch .pt: read Python objects the pickle may not build (an argparse.Namespace, a whole
  /// nn.Module, any other class or function) as inert records — {"$class": "module.Name",
  /// "$args": [...], "$state": {...}, ...}, tensors inside loaded as tensors — instead of
  /// refusing the file. Nothing is imported or called either way. (`ckpt --inert-objects`.)
  bool inert_objects = false;

  bool verify_checksums() const { return verify.value_or(!mmap); }
};

/// What a load into an object did not match. Paths are escaped dotted key paths.
struct LoadReport {
  std::vector<std::string> missing;     ///< the object wanted these; the file lacks them
  std::vector<std::string> unexpected;  ///< the file has these; the object has no place for them
  std::vector<std::string> mismatched;  ///< dtype/shape differed and were skipped (with reason)

  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// Append `other` with every path prefixed by `prefix`.
  void merge(const LoadReport& other, const KeyPath& prefix = {}) {
    auto add = [&](std::vector<std::string>& dst, const std::vector<std::string>& src) {
      const auto pre = prefix.str();
      for (const auto& s : src) {
        std::string k = pre;
        if (!pre.empty() && !s.empty()) k += '.';
        k += s;
        dst.push_back(std::move(k));
      }
    };
    add(missing, other.missing);
    add(unexpected, other.unexpected);
    add(mismatched, other.mismatched);
  }
  /// "missing: a, b; unexpected: c" — for messages.
  std::string summary() const {
    auto list = [](const char* label, const std::vector<std::string>& v) {
      std::string s;
      if (v.empty()) return s;
      s = std::string(label) + ": ";
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) s += ", ";
        s += v[i];
      }
      return s + "; ";
    };
    auto s = list("missing", missing) + list("unexpected", unexpected) + list("mismatched", mismatched);
    if (s.size() >= 2) s.resize(s.size() - 2);
    return s;
  }
};

/// A node of the checkpoint tree: a dict of named children (insertion-ordered), a tensor, or a
/// JSON value. A default StateDict is an empty dict. Copies are deep for the tree and shallow
/// for tensor bytes (as Tensor copies are).
class StateDict {
 public:
  enum class Kind : std::uint8_t { dict, tensor, value };
  struct Item;

  // Constructors and special members are defined after Item is complete (below the class):
  // std::vector<Item> needs the complete type wherever it may be destroyed.
  StateDict();
  StateDict(Tensor t);  // NOLINT: implicit, like json's constructors
  StateDict(Value v);   // NOLINT
  template <class T>
    requires(std::is_arithmetic_v<std::remove_cvref_t<T>> ||
             std::is_convertible_v<T, std::string_view> || std::is_null_pointer_v<std::remove_cvref_t<T>>)
  StateDict(T&& v);  // NOLINT(bugprone-forwarding-reference-overload): constrained to scalars/strings
  /// An empty dict node of the given container kind.
  static StateDict dict(Container c = Container::dict);
  StateDict(const StateDict& o);
  StateDict(StateDict&&) noexcept;
  StateDict& operator=(const StateDict& o);
  StateDict& operator=(StateDict&&) noexcept;
  ~StateDict();

  Kind kind() const noexcept { return static_cast<Kind>(payload_.index()); }
  bool is_dict() const noexcept { return kind() == Kind::dict; }
  bool is_tensor() const noexcept { return kind() == Kind::tensor; }
  bool is_value() const noexcept { return kind() == Kind::value; }
  static std::string_view kind_name(Kind k) { return k == Kind::dict ? "dict" : k == Kind::tensor ? "tensor" : "value"; }

  /// The tensor of a tensor leaf; throws mismatch_error otherwise.
  const Tensor& tensor() const { expect(Kind::tensor); return std::get<Tensor>(payload_); }
  Tensor& tensor() { expect(Kind::tensor); return std::get<Tensor>(payload_); }
  /// The JSON value of a value leaf; throws mismatch_error otherwise.
  const Value& value() const { expect(Kind::value); return std::get<Value>(payload_); }
  Value& value() { expect(Kind::value); return std::get<Value>(payload_); }
  /// A value leaf converted to T (nlohmann conversion).
  template <class T> T get() const { return value().get<T>(); }

  Container container() const noexcept { return container_; }
  void set_container(Container c) { container_ = c; }

  // ---- dict access ----
  /// Children of a dict node, in insertion order.
  const std::vector<Item>& items() const;
  std::size_t size() const;
  bool empty() const { return size() == 0; }
  std::vector<std::string> keys() const;

  /// Direct child by key (no path parsing); nullptr when absent or not a dict.
  const StateDict* find_key(std::string_view key) const;
  StateDict* find_key(std::string_view key);
  /// Node at a key path; nullptr when absent.
  const StateDict* find(const KeyPath& path) const;
  const StateDict* find(std::string_view dotted) const { return find(KeyPath::parse(dotted)); }
  bool contains(const KeyPath& path) const { return find(path) != nullptr; }
  bool contains(std::string_view dotted) const { return find(dotted) != nullptr; }
  /// Node at a key path; throws key_error naming the path.
  const StateDict& at(const KeyPath& path) const;
  const StateDict& at(std::string_view dotted) const { return at(KeyPath::parse(dotted)); }
  StateDict& at(const KeyPath& path) { return const_cast<StateDict&>(std::as_const(*this).at(path)); }
  StateDict& at(std::string_view dotted) { return at(KeyPath::parse(dotted)); }
  /// Node at a key path, creating empty dicts on the way (like json's operator[]).
  StateDict& operator[](const KeyPath& path);
  StateDict& operator[](std::string_view dotted) { return (*this)[KeyPath::parse(dotted)]; }
  StateDict& operator[](const char* dotted) { return (*this)[std::string_view(dotted)]; }
  /// Insert or replace a direct child (key taken literally, dots and all).
  StateDict& set(std::string key, StateDict value);
  /// Remove a direct child; returns whether it existed.
  bool erase(std::string_view key);

  /// Every leaf with its path, depth first in insertion order. Empty dicts have no leaves.
  std::vector<std::pair<KeyPath, const StateDict*>> flatten() const;
  /// Rebuild a tree from (path, leaf) pairs (inverse of flatten for trees without empty dicts).
  static StateDict unflatten(const std::vector<std::pair<KeyPath, StateDict>>& leaves);
  /// Number of tensor leaves and their total bytes.
  std::size_t tensor_count() const;
  std::uint64_t tensor_bytes() const;

  /// Deep equality: same kinds, keys in the same order, containers, values and tensor bytes.
  friend bool operator==(const StateDict& a, const StateDict& b);

 private:
  void expect(Kind k) const {
    if (kind() != k) throw mismatch_error("wrong kind of state-dict node", "", std::string(kind_name(k)), std::string(kind_name(kind())));
  }
  void rebuild_index() const;

  std::variant<std::monostate, Tensor, Value> payload_;  // monostate = dict
  Container container_ = Container::dict;
  std::vector<Item> items_;
  mutable std::unordered_map<std::string, std::size_t> index_;  // key -> position; rebuilt lazily
};

struct StateDict::Item {
  std::string key;
  StateDict value;
  friend bool operator==(const Item&, const Item&) = default;
};

// ---- out-of-line members (Item is complete here) -----------------------------------------

inline StateDict::StateDict() = default;
inline StateDict::StateDict(Tensor t) : payload_(std::move(t)) {}
inline StateDict::StateDict(Value v) : payload_(std::move(v)) {}
template <class T>
  requires(std::is_arithmetic_v<std::remove_cvref_t<T>> ||
           std::is_convertible_v<T, std::string_view> || std::is_null_pointer_v<std::remove_cvref_t<T>>)
inline StateDict::StateDict(T&& v) : payload_(Value(std::forward<T>(v))) {}  // NOLINT(bugprone-forwarding-reference-overload)
inline StateDict StateDict::dict(Container c) {
  StateDict s;
  s.container_ = c;
  return s;
}
inline StateDict::StateDict(const StateDict& o) : payload_(o.payload_), container_(o.container_), items_(o.items_) {}
inline StateDict::StateDict(StateDict&&) noexcept = default;
inline StateDict& StateDict::operator=(const StateDict& o) {
  if (this != &o) {
    StateDict tmp(o);
    *this = std::move(tmp);
  }
  return *this;
}
inline StateDict& StateDict::operator=(StateDict&&) noexcept = default;
inline StateDict::~StateDict() = default;

inline const std::vector<StateDict::Item>& StateDict::items() const {
  expect(Kind::dict);
  return items_;
}
inline std::size_t StateDict::size() const { return is_dict() ? items_.size() : 0; }

inline std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> k;
  for (const auto& it : items()) k.push_back(it.key);
  return k;
}

inline const StateDict* StateDict::find_key(std::string_view key) const {
  if (!is_dict()) return nullptr;
  if (index_.size() != items_.size()) rebuild_index();
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &items_[it->second].value;
}
inline StateDict* StateDict::find_key(std::string_view key) {
  return const_cast<StateDict*>(std::as_const(*this).find_key(key));
}

inline const StateDict* StateDict::find(const KeyPath& path) const {
  const StateDict* n = this;
  for (const auto& k : path.keys()) {
    n = n->find_key(k);
    if (!n) return nullptr;
  }
  return n;
}

inline const StateDict& StateDict::at(const KeyPath& path) const {
  const StateDict* n = this;
  KeyPath walked;
  for (const auto& k : path.keys()) {
    walked = walked / k;
    if (!n->is_dict()) throw key_error("no such key (a " + std::string(kind_name(n->kind())) + " leaf has no children)", "", walked.str());
    n = n->find_key(k);
    if (!n) throw key_error("no such key", "", walked.str());
  }
  return *n;
}

inline StateDict& StateDict::operator[](const KeyPath& path) {
  StateDict* n = this;
  for (const auto& k : path.keys()) {
    if (!n->is_dict()) throw key_error("cannot index into a " + std::string(kind_name(n->kind())) + " leaf", "", path.str());
    StateDict* c = n->find_key(k);
    if (!c) c = &n->set(k, StateDict{});
    n = c;
  }
  return *n;
}

inline StateDict& StateDict::set(std::string key, StateDict value) {
  expect(Kind::dict);
  if (StateDict* c = find_key(key)) {
    *c = std::move(value);
    return *c;
  }
  items_.push_back(Item{std::move(key), std::move(value)});
  index_.emplace(items_.back().key, items_.size() - 1);
  return items_.back().value;
}

inline bool StateDict::erase(std::string_view key) {
  if (!is_dict()) return false;
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->key == key) {
      items_.erase(it);
      rebuild_index();
      return true;
    }
  }
  return false;
}

inline void StateDict::rebuild_index() const {
  index_.clear();
  for (std::size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].key, i);
}

inline std::vector<std::pair<KeyPath, const StateDict*>> StateDict::flatten() const {
  std::vector<std::pair<KeyPath, const StateDict*>> out;
  auto rec = [&](auto&& self, const StateDict& n, const KeyPath& p) -> void {
    if (!n.is_dict()) {
      out.emplace_back(p, &n);
      return;
    }
    for (const auto& it : n.items_) self(self, it.value, p / it.key);
  };
  rec(rec, *this, {});
  return out;
}

inline StateDict StateDict::unflatten(const std::vector<std::pair<KeyPath, StateDict>>& leaves) {
  StateDict root;
  for (const auto& [p, v] : leaves) root[p] = v;
  return root;
}

inline std::size_t StateDict::tensor_count() const {
  std::size_t n = 0;
  for (const auto& [p, v] : flatten()) n += v->is_tensor();
  return n;
}
inline std::uint64_t StateDict::tensor_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [p, v] : flatten())
    if (v->is_tensor()) n += v->tensor().nbytes();
  return n;
}

inline bool operator==(const StateDict& a, const StateDict& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case StateDict::Kind::tensor: return a.tensor() == b.tensor();
    case StateDict::Kind::value: return a.value() == b.value();
    case StateDict::Kind::dict: return a.container_ == b.container_ && a.items_ == b.items_;
  }
  return false;
}

}  // namespace ckpt
