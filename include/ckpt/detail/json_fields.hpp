// ckpt/detail/json_fields.hpp — reading members and numbers of JSON that came from a file, so
// possibly hostile: nothing here throws nlohmann's exceptions or casts out of range (nlohmann's
// value(key, default) throws type_error for a member of another type, and get<arithmetic>()
// static_casts, undefined for out-of-range values — both were fuzzer findings).
#pragma once

#include <cmath>     // range checks
#include <cstdint>   // integers
#include <limits>    // range checks
#include <optional>  // results
#include <string>    // members
#include <utility>   // std::in_range

#include "../state_dict.hpp"  // Value
#include "../tensor.hpp"      // Shape

namespace ckpt::detail {

/// `obj[key]` when obj is an object holding a string there, else "". Never throws: in a hostile
/// document any member can have any type, and nlohmann's value(key, default) throws type_error
/// when the member exists with another type (a fuzzer finding in the JSON reader).
inline std::string string_member(const Value& obj, const char* key) {
  if (!obj.is_object()) return {};
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}
/// Whether `obj[key]` is the integer `want` (false for a missing member or another type).
inline bool integer_member_is(const Value& obj, const char* key, std::int64_t want) {
  if (!obj.is_object()) return false;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() && it->get<std::int64_t>() == want;
}

/// A JSON number as T, or nullopt when T cannot hold it: integers must be in range, a float bound
/// for an integer type must be integral and in range, a double bound for float within float's
/// range; bool takes only true/false. nlohmann's get<T>() static_casts instead, which is
/// undefined for out-of-range values (a fuzzer finding: a JSON shape dimension of 2.2e69).
template <class T>
std::optional<T> number_as(const Value& v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v.is_boolean()) return v.get<bool>();
    return std::nullopt;
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (std::in_range<T>(u)) return static_cast<T>(u);
    } else if (v.is_number_integer()) {
      const auto i = v.get<std::int64_t>();
      if (std::in_range<T>(i)) return static_cast<T>(i);
    } else if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && d == std::trunc(d) && d >= static_cast<double>(std::numeric_limits<T>::min()) &&
          d < std::ldexp(1.0, std::numeric_limits<T>::digits))
        return static_cast<T>(d);
    } else if (v.is_boolean()) {
      return static_cast<T>(v.get<bool>());
    }
    return std::nullopt;
  } else {
    static_assert(std::is_floating_point_v<T>);
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::is_same_v<T, double> || !std::isfinite(d) || std::fabs(d) <= static_cast<double>(std::numeric_limits<T>::max())) return static_cast<T>(d);
    } else if (v.is_number_unsigned()) {
      return static_cast<T>(v.get<std::uint64_t>());
    } else if (v.is_number_integer()) {
      return static_cast<T>(v.get<std::int64_t>());
    } else if (v.is_boolean()) {
      return static_cast<T>(v.get<bool>());
    }
    return std::nullopt;
  }
}
/// A JSON integer (never a float, never a bool) as T, or nullopt: for sizes, offsets, steps.
template <class T>
std::optional<T> integer_as(const Value& v) {
  if (!v.is_number_integer()) return std::nullopt;
  return number_as<T>(v);
}
/// A JSON array of integers as a Shape (dimensions may be negative; callers check sizes), or
/// nullopt when it is not one.
inline std::optional<Shape> shape_of(const Value& v) {
  if (!v.is_array()) return std::nullopt;
  Shape s;
  s.reserve(v.size());
  for (const auto& d : v) {
    const auto x = integer_as<std::int64_t>(d);
    if (!x) return std::nullopt;
    s.push_back(*x);
  }
  return s;
}
/// A short rendering of a JSON value for "got ..." in messages.
inline std::string json_excerpt(const Value& v) {
  std::string s = v.dump(-1, ' ', false, Value::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

}  // namespace ckpt::detail
