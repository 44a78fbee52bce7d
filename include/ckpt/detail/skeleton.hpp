// ckpt/detail/skeleton.hpp — the tree-shape JSON that backends with a metadata tree store
// next to their tensors, so a StateDict round-trips exactly (order, nesting, dotted keys,
// containers, empty dicts, value leaves):
//   node := {"dict": [[key, node], ...], "container": "dict" | "int_dict" | "list"}
//         | {"tensor": <index into the file's tensor table>}
//         | {"value": <any JSON>}
// SkeletonBuilder assembles it from the OutputArchive event stream; build_from_skeleton turns
// it back into a StateDict with tensors supplied by the reader, validating as it goes.
#pragma once

#include <cstddef>     // indices
#include <functional>  // tensor provider
#include <string>      // keys
#include <vector>      // stack

#include "../error.hpp"       // format_error
#include "../state_dict.hpp"  // StateDict, KeyPath, Container
#include "json_fields.hpp"    // reading members and numbers of hostile JSON
#include "json_parse.hpp"     // parse_json_limited, JsonShape

namespace ckpt::detail {

/// Maximum nesting depth accepted when reading a skeleton (hostile files).
inline constexpr std::size_t max_tree_depth = 256;

class SkeletonBuilder {
 public:
  void begin_group(const KeyPath& p, Container c) {
    stack_.push_back({p.empty() ? std::string() : p.back(), Value{{"dict", Value::array()}, {"container", container_name(c)}}});
  }
  void end_group(const KeyPath&) {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    add(f.key, std::move(f.node));
  }
  void tensor(const KeyPath& p, std::size_t index) { add(p.empty() ? "" : p.back(), Value{{"tensor", index}}); }
  void value(const KeyPath& p, const Value& v) { add(p.empty() ? "" : p.back(), Value{{"value", v}}); }
  /// The finished skeleton (after the root's end_group).
  Value& root() { return root_; }

 private:
  struct Frame {
    std::string key;
    Value node;
  };
  void add(const std::string& key, Value node) {
    if (stack_.empty()) root_ = std::move(node);
    else stack_.back().node["dict"].push_back(Value::array({key, std::move(node)}));
  }
  std::vector<Frame> stack_;
  Value root_;
};

/// Rebuild a StateDict from a skeleton. `tensor_at(index, path)` supplies tensor leaves;
/// `tensor_count` bounds the indices. Errors are format_errors naming `file` and the key path.
inline StateDict build_from_skeleton(const Value& node, const std::function<Tensor(std::size_t, const KeyPath&)>& tensor_at,
                                     std::size_t tensor_count, const std::string& file, const KeyPath& path = {},
                                     std::size_t depth = 0) {
  auto bad = [&](const std::string& what) { return format_error("invalid tree: " + what, file, format_error::no_offset, path.str()); };
  if (depth > max_tree_depth) throw bad("nesting deeper than " + std::to_string(max_tree_depth));
  if (!node.is_object() || node.size() < 1) throw bad("a node must be an object");
  if (auto it = node.find("tensor"); it != node.end()) {
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() >= tensor_count) throw bad("tensor index out of range");
    return StateDict(tensor_at(it->get<std::size_t>(), path));
  }
  if (auto it = node.find("value"); it != node.end()) return StateDict(*it);
  auto d = node.find("dict");
  if (d == node.end() || !d->is_array()) throw bad("a node needs \"dict\", \"tensor\" or \"value\"");
  Container c = Container::dict;
  if (auto ci = node.find("container"); ci != node.end()) {
    auto parsed = ci->is_string() ? container_from_name(ci->get<std::string>()) : std::nullopt;
    if (!parsed) throw bad("unknown container " + ci->dump());
    c = *parsed;
  }
  StateDict sd = StateDict::dict(c);
  for (const auto& item : *d) {
    if (!item.is_array() || item.size() != 2 || !item[0].is_string()) throw bad("a dict item must be [key, node]");
    const auto& key = item[0].get_ref<const std::string&>();
    if (sd.find_key(key)) throw bad("duplicate key '" + key + "'");
    sd.set(key, build_from_skeleton(item[1], tensor_at, tensor_count, file, path / key, depth + 1));
  }
  return sd;
}

/// The JsonShape of a skeleton node, for strict reading (see json_parse.hpp): a node has the
/// members "dict", "container", "tensor" and "value" (whose value is free); "dict" holds
/// [key, node] pairs.
inline const JsonShape& skeleton_shape() {
  struct Shapes {
    JsonShape node, list, pair;
    const JsonShape::Member node_members[4] = {{"dict", &list}, {"container", nullptr}, {"tensor", nullptr}, {"value", nullptr}};
    const JsonShape* const pair_positions[2] = {nullptr, &node};
    Shapes() {
      node.members = node_members;
      list.items = &pair;
      pair.positions = pair_positions;
    }
  };
  static const Shapes s;
  return s.node;
}

}  // namespace ckpt::detail
