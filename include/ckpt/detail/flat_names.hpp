// ckpt/detail/flat_names.hpp — shared by the flat formats (safetensors, npz) that name each
// tensor by its key path joined with '.' (KeyPath::joined) and keep the exact tree beside the
// tensors. In that stored tree a tensor leaf names its tensor ({"tensor": "model.weight"})
// instead of giving a position, so a file that another tool rewrote in a different order
// still loads right; on read the names are turned back into entry indices. Also a JSON parse
// that caps nesting and can reject duplicate keys in linear time (nlohmann's callback parser,
// used by parse_json_limited, is quadratic in the length of an array of objects).
#pragma once

#include <cstddef>        // indices
#include <string>         // names
#include <string_view>    // names
#include <unordered_map>  // name -> index
#include <unordered_set>  // clash detection
#include <vector>         // names in order, parse stack

#include "../error.hpp"       // format_error, unsupported_error
#include "../state_dict.hpp"  // KeyPath, Value
#include "skeleton.hpp"       // max_tree_depth

namespace ckpt::detail {

/// The alignment a mapped tensor of dtype t needs for typed access: its element size, or half
/// of it for complex numbers (two floats).
inline std::size_t element_alignment(DType t) {
  return t == DType::c64 || t == DType::c128 ? element_size(t) / 2 : element_size(t);
}

/// The flat names of the tensors written so far, in write order.
class FlatNames {
 public:
  /// Name the tensor at `p`: p.joined(), or `root_name` for a tensor at the root. Throws
  /// unsupported_error when two key paths get the same name or a name is `reserved`.
  const std::string& add(const KeyPath& p, std::string_view root_name, const std::string& file, std::string_view reserved = {}) {
    std::string n = p.empty() ? std::string(root_name) : p.joined();
    if (!reserved.empty() && n == reserved) throw unsupported_error("the flat name '" + n + "' is reserved by the format", file, p.str());
    if (!seen_.insert(n).second)
      throw unsupported_error("two key paths have the same flat name '" + n + "' (a key with a dot and a nested key); rename one or use the native format", file, p.str());
    names_.push_back(std::move(n));
    return names_.back();
  }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::unordered_set<std::string> seen_;
};

/// A copy of skeleton `sk` whose tensor leaves {"tensor": i} name names[i] instead.
inline Value name_tensors(const Value& sk, const std::vector<std::string>& names) {
  if (!sk.is_object()) return sk;
  if (auto t = sk.find("tensor"); t != sk.end() && t->is_number_unsigned() && t->get<std::size_t>() < names.size())
    return Value{{"tensor", names[t->get<std::size_t>()]}};
  Value out = sk;
  if (auto d = out.find("dict"); d != out.end() && d->is_array())
    for (auto& item : *d)
      if (item.is_array() && item.size() == 2) item[1] = name_tensors(item[1], names);
  return out;
}

/// A copy of stored tree `sk` whose tensor leaves {"tensor": "name"} become entry indices.
/// Throws format_error when a leaf names a tensor the file lacks, or when `require_all` and a
/// tensor is named by no leaf (the file was changed without its tree). Structure is checked
/// later by build_from_skeleton; this walk only caps the depth.
inline Value index_tensors(const Value& sk, const std::unordered_map<std::string, std::size_t>& index, const std::string& file,
                           bool require_all = true) {
  std::vector<bool> used(index.size(), false);
  auto walk = [&](auto&& self, const Value& n, const KeyPath& p, std::size_t depth) -> Value {
    if (depth > max_tree_depth) throw format_error("invalid tree: nesting deeper than " + std::to_string(max_tree_depth), file, format_error::no_offset, p.str());
    if (!n.is_object()) return n;
    if (auto t = n.find("tensor"); t != n.end()) {
      if (!t->is_string()) throw format_error("invalid tree: a tensor leaf must name its tensor", file, format_error::no_offset, p.str(), "a tensor name", t->dump());
      auto it = index.find(t->get<std::string>());
      if (it == index.end()) throw format_error("the tree names a tensor the file lacks", file, format_error::no_offset, p.str(), "a tensor called '" + t->get<std::string>() + "'", "none");
      if (it->second < used.size()) used[it->second] = true;
      return Value{{"tensor", it->second}};
    }
    Value out = n;
    if (auto d = out.find("dict"); d != out.end() && d->is_array())
      for (auto& item : *d)
        if (item.is_array() && item.size() == 2 && item[0].is_string()) item[1] = self(self, item[1], p / item[0].get<std::string>(), depth + 1);
    return out;
  };
  Value out = walk(walk, sk, KeyPath{}, 0);
  if (require_all)
    for (const auto& [name, i] : index)
      if (i < used.size() && !used[i])
        throw format_error("the file has a tensor its tree does not place (changed by another tool?)", file, format_error::no_offset, name);
  return out;
}

}  // namespace ckpt::detail
