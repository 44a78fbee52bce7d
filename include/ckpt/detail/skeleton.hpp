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
#include <unordered_set>  // duplicate-key check
#include <string>      // keys
#include <vector>      // stack

#include "../error.hpp"       // format_error
#include "../state_dict.hpp"  // StateDict, KeyPath, Container
#include "json_fields.hpp"    // reading members and numbers of hostile JSON

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

/// SAX pass that fails on nesting deeper than max_depth or (optionally) a duplicate key.
struct JsonShapeCheck {
  JsonShapeCheck(std::size_t max, bool dups) : max_depth(max), reject_duplicates(dups) {}
  std::size_t max_depth;
  bool reject_duplicates;
  std::size_t depth = 0;
  std::vector<std::unordered_set<std::string>> keys;
  std::string problem;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(std::int64_t) { return true; }
  bool number_unsigned(std::uint64_t) { return true; }
  bool number_float(double, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(Value::binary_t&) { return true; }
  bool start_object(std::size_t) {
    if (reject_duplicates) keys.emplace_back();
    return enter();
  }
  bool key(std::string& k) {
    if (reject_duplicates && !keys.back().insert(k).second) {
      problem = "duplicate key '" + k + "'";
      return false;
    }
    return true;
  }
  bool end_object() {
    if (reject_duplicates) keys.pop_back();
    --depth;
    return true;
  }
  bool start_array(std::size_t) { return enter(); }
  bool end_array() {
    --depth;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) {
    problem = std::string("invalid JSON: ") + e.what();
    return false;
  }
  bool enter() {
    if (++depth <= max_depth) return true;
    problem = "JSON nested deeper than " + std::to_string(max_depth) + " levels";
    return false;
  }
};

/// Parse JSON text (as Json, e.g. Value or nlohmann::ordered_json) in linear time, with nesting
/// capped at max_depth and, when asked, duplicate keys refused; format_error("<what>: <problem>").
template <class Json = Value>
Json parse_json_checked(std::string_view text, const std::string& what, const std::string& file, std::uint64_t offset,
                        bool reject_duplicates = false, std::size_t max_depth = 2 * max_tree_depth + 16) {
  JsonShapeCheck check(max_depth, reject_duplicates);
  if (!Value::sax_parse(text.begin(), text.end(), &check)) throw format_error(what + ": " + check.problem, file, offset);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw format_error(what + ": invalid JSON: " + e.what(), file, offset);
  }
}

/// Parse JSON from a file's bytes with a nesting cap; format_error (with file) on failure.
/// Linear time: a SAX pre-pass checks the depth (nlohmann's callback parser rescans containers
/// and went quadratic on footers with tens of thousands of tensors).
inline Value parse_json_limited(std::string_view text, const std::string& file, std::uint64_t base_offset = 0) {
  return parse_json_checked(text, "cannot parse JSON", file, base_offset);
}

}  // namespace ckpt::detail
