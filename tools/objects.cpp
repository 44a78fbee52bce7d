// tools/objects.cpp — the inert records in a checkpoint's tree (Python objects a .pt file's
// pickle holds, read with --inert-objects; their shape is in ckpt/detail/record.hpp), for `ls`
// and `info`: where each one is, its class, and its fields on one abbreviated line —
// `training=true, _parameters={weight: f32[4, 3], bias: f32[4]}, in_features=3, ...` — with
// empty fields (a module's hook dicts) left out. Sets, complex numbers and bytes are records
// too but are values, not objects: they are shown inside the fields, not listed.
#include <ckpt/detail/record.hpp>  // record fields

#include "cli.hpp"

namespace ckpt_cli {
namespace {
namespace rec = ckpt::detail::record;

bool is_value_class(const std::string& c) {
  return c == "builtins.set" || c == "builtins.frozenset" || c == "builtins.complex" || c == "builtins.bytes" || c == "builtins.bytearray";
}

/// Reads one record, from a skeleton dict node or a JSON value, and shows its parts.
class Brief {
 public:
  explicit Brief(const Opened& o) : o_(o) {}

  // A skeleton node as short text.
  std::string node(const ckpt::Value& n, int depth) const {
    if (auto t = n.find("tensor"); t != n.end()) {
      const auto& e = o_.entries.at(t->get<std::size_t>());
      return std::string(ckpt::name(e.dtype)) + ckpt::shape_string(e.shape);
    }
    if (auto v = n.find("value"); v != n.end()) return value(*v, depth);
    if (rec::is_record_node(n)) return record_text(node_fields(n), depth, true);
    return braces(n.at("dict"), depth, true);
  }
  // A JSON value as short text.
  std::string value(const ckpt::Value& v, int depth) const {
    if (rec::is_record(v)) {
      std::vector<std::pair<std::string, const ckpt::Value*>> f;
      for (const auto& [k, x] : v.items()) f.emplace_back(k, &x);
      return record_text(as_parts(f), depth, true);
    }
    if (v.is_object()) {
      ckpt::Value items = ckpt::Value::array();
      for (const auto& [k, x] : v.items()) items.push_back(ckpt::Value::array({k, ckpt::Value{{"value", x}}}));
      return braces(items, depth, false);
    }
    return abbreviate(v.dump(), 40);
  }
  // A record's fields: name -> (skeleton node or nullptr, JSON value or nullptr).
  struct Part {
    std::string key;
    const ckpt::Value* node = nullptr;
    const ckpt::Value* value = nullptr;
  };
  std::vector<Part> node_fields(const ckpt::Value& n) const {
    std::vector<Part> f;
    for (const auto& item : n.at("dict")) f.push_back({item[0].get<std::string>(), &item[1], nullptr});
    return f;
  }
  static std::vector<Part> as_parts(const std::vector<std::pair<std::string, const ckpt::Value*>>& f) {
    std::vector<Part> r;
    for (const auto& [k, v] : f) r.push_back({k, nullptr, v});
    return r;
  }
  static std::string class_of(const std::vector<Part>& f) {
    for (auto name : {rec::cls, rec::global})
      for (const auto& p : f)
        if (p.key == name) {
          const ckpt::Value* v = p.value ? p.value : p.node && p.node->contains("value") ? &p.node->at("value") : nullptr;
          if (v && v->is_string()) return v->get<std::string>();
        }
    return "(a call's result)";
  }
  // "k=v, ..." of a record: $state's entries when it is a dict, then args=, kwargs=, items=,
  // bytes=; empty entries left out. With `named`, "Class(...)" (for records inside fields).
  std::string record_text(const std::vector<Part>& f, int depth, bool named) const {
    const std::string cls = class_of(f);
    const std::string short_cls = cls.substr(cls.rfind('.') + 1);
    if (named && is_value_class(cls)) {  // set(["a", "b"]), complex([1.0, 2.0]), bytes("AAH/")
      std::string inner;
      for (const auto& p : f)
        if (p.key != rec::cls) inner += p.node ? node(*p.node, depth + 1) : abbreviate(p.value->dump(), 40);
      return inner == "[]" ? short_cls + "()" : short_cls + "(" + inner + ")";
    }
    if (depth > 2) return short_cls + "(...)";
    std::string out;
    auto add = [&](const std::string& k, const std::string& v) {
      if (v.empty() || v == "{}" || v == "[]" || v == "null" || v == "set()" || v == "frozenset()") return;
      out += (out.empty() ? "" : ", ") + k + "=" + v;
    };
    for (const auto& p : f) {
      if (p.key == rec::cls || p.key == rec::global) continue;
      const std::string k = p.key.substr(1);
      if (p.key == rec::state) {  // an object's attributes: show them as its fields
        if (p.node && p.node->contains("dict") && !rec::is_record_node(*p.node)) {
          for (const auto& item : p.node->at("dict")) add(item[0].get<std::string>(), node(item[1], depth + 1));
          continue;
        }
        const ckpt::Value* v = p.value ? p.value : p.node->contains("value") ? &p.node->at("value") : nullptr;
        if (v && v->is_object() && !rec::is_record(*v)) {
          for (const auto& [sk, sv] : v->items()) add(sk, value(sv, depth + 1));
          continue;
        }
      }
      add(k, p.node ? node(*p.node, depth + 1) : value(*p.value, depth + 1));
    }
    return named ? short_cls + "(" + out + ")" : out;
  }
  std::string braces(const ckpt::Value& items, int depth, bool nodes) const {
    if (items.empty()) return "{}";
    if (depth > 2) return "{...}";
    std::string out;
    for (const auto& item : items) {
      out += (out.empty() ? "" : ", ") + item[0].get<std::string>();
      const std::string v = nodes ? node(item[1], depth + 1) : value(item[1].at("value"), depth + 1);
      if (!v.empty()) out += ": " + v;
      if (out.size() > 100) break;
    }
    return "{" + abbreviate(out, 100) + "}";
  }

 private:
  const Opened& o_;
};

void collect_value(const Brief& b, const ckpt::KeyPath& p, const ckpt::Value& v, std::vector<ObjectInfo>& out, int depth) {
  if (depth > 64) return;
  if (rec::is_record(v)) {
    std::vector<std::pair<std::string, const ckpt::Value*>> f;
    for (const auto& [k, x] : v.items()) f.emplace_back(k, &x);
    const auto parts = Brief::as_parts(f);
    const std::string cls = Brief::class_of(parts);
    if (!is_value_class(cls)) out.push_back({p, cls, abbreviate(b.record_text(parts, 0, false), 100)});
  }
  if (v.is_object())
    for (const auto& [k, x] : v.items()) collect_value(b, p / k, x, out, depth + 1);
  else if (v.is_array())
    for (std::size_t i = 0; i < v.size(); ++i) collect_value(b, p / std::to_string(i), v[i], out, depth + 1);
}

void collect_node(const Brief& b, const ckpt::KeyPath& p, const ckpt::Value& n, std::vector<ObjectInfo>& out) {
  if (auto v = n.find("value"); v != n.end()) return collect_value(b, p, *v, out, 0);
  auto d = n.find("dict");
  if (d == n.end()) return;
  if (rec::is_record_node(n)) {
    const auto parts = b.node_fields(n);
    const std::string cls = Brief::class_of(parts);
    if (!is_value_class(cls)) out.push_back({p, cls, abbreviate(b.record_text(parts, 0, false), 100)});
  }
  for (const auto& item : *d) collect_node(b, p / item[0].get<std::string>(), item[1], out);
}

}  // namespace

std::vector<ObjectInfo> objects_of(const Opened& o) {
  std::vector<ObjectInfo> out;
  if (o.flat) return out;
  const Brief b(o);
  collect_node(b, {}, o.tree, out);
  return out;
}

bool under_object(const ckpt::KeyPath& p, const std::vector<ObjectInfo>& objects) {
  for (const auto& obj : objects) {
    const auto& k = obj.path.keys();
    if (k.size() <= p.size() && std::equal(k.begin(), k.end(), p.keys().begin())) return true;
  }
  return false;
}

}  // namespace ckpt_cli
