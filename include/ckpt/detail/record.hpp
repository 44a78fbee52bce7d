// ckpt/detail/record.hpp — the shape of an inert record: how a Python object that a pickle may
// not build (or a set, complex number or bytes value) appears in a checkpoint's tree when the
// .pt reader reads it without running anything (LoadOptions::inert_objects; README "Reading
// real-world .pt files"). A record is a dict whose keys are some of
//   "$class"   the global called or instantiated ("argparse.Namespace"), or for a call of what
//              a call returned, that call's record
//   "$args"    positional arguments (REDUCE / NEWOBJ; REDUCE and NEWOBJ are not told apart)
//   "$kwargs"  keyword arguments (NEWOBJ_EX)
//   "$state"   what BUILD set (usually the object's __dict__)
//   "$items"   what APPEND(S) / SETITEM(S) added (a list- or dict-subclass), or a set's elements
//   "$base64"  the bytes of a bytes / bytearray value
// and a global referenced as a value is {"$global": "module.name"}. A record holding a tensor
// is a dict node; one holding none is a JSON object value — the same rule as for dicts.
// The helpers take any nlohmann JSON type (ckpt::Value, ordered_json).
#pragma once

#include <string>       // class names
#include <string_view>  // field names

namespace ckpt::detail::record {

inline constexpr std::string_view cls = "$class", args = "$args", kwargs = "$kwargs", state = "$state", items = "$items",
                                  base64 = "$base64", global = "$global";

/// Is `key` one of the field names above?
inline bool is_field(std::string_view key) {
  return key == cls || key == args || key == kwargs || key == state || key == items || key == base64 || key == global;
}

/// Is JSON value `v` a record (an object with "$class" or "$global" and only field names)?
template <class Json>
bool is_record(const Json& v) {
  if (!v.is_object() || !(v.contains(cls) || v.contains(global))) return false;
  for (const auto& [k, x] : v.items())
    if (!is_field(k)) return false;
  return true;
}

/// Is skeleton node `node` (detail/skeleton.hpp) a dict node that is a record? Its "$class" or
/// "$global" child is then a value node.
template <class Json>
bool is_record_node(const Json& node) {
  const auto d = node.find("dict");
  if (d == node.end() || !d->is_array()) return false;
  if (const auto c = node.find("container"); c != node.end() && *c != "dict") return false;
  bool named = false;
  for (const auto& item : *d) {
    if (!item.is_array() || item.size() != 2 || !item[0].is_string() || !is_field(item[0].template get_ref<const std::string&>())) return false;
    named = named || item[0] == cls || item[0] == global;
  }
  return named;
}

/// The class a record stands for: its "$class" or "$global" name, "(a call's result)" when the
/// class is itself a record. `fields` maps a field name to its JSON value or nullptr.
template <class Find>
std::string class_name(Find&& fields) {
  for (auto f : {cls, global})
    if (const auto* v = fields(f); v && v->is_string()) return v->template get<std::string>();
  return "(a call's result)";
}

}  // namespace ckpt::detail::record
