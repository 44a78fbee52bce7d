// ckpt/types/containers.hpp — built-in Checkpointables for standard containers:
// std::map / std::unordered_map with string or integer keys (dicts), std::vector of
// non-element Checkpointables (lists), std::optional (null when empty).
#pragma once

#include <charconv>       // integer keys
#include <map>            // std::map
#include <optional>       // std::optional
#include <string>         // keys
#include <unordered_map>  // std::unordered_map
#include <vector>         // lists

#include "../concepts.hpp"  // checkpoint_traits, load_child

namespace ckpt {

namespace detail {
template <class K>
std::string key_to_string(const K& k) {
  if constexpr (std::is_integral_v<K>) return std::to_string(k);
  else return std::string(k);
}
template <class K>
K key_from_string(const std::string& s) {
  if constexpr (std::is_integral_v<K>) {
    K v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) throw mismatch_error("dict key is not an integer", "", "integer key", "'" + s + "'");
    return v;
  } else {
    return K(s);
  }
}

/// Maps: the map becomes exactly what the file holds (no missing/unexpected keys), in the
/// file's order. Integer keys are stored as decimal strings in an int_dict container.
template <class M>
struct map_traits {
  using K = typename M::key_type;
  using V = typename M::mapped_type;
  static StateDict state_dict(const M& m) {
    StateDict sd = StateDict::dict(std::is_integral_v<K> ? Container::int_dict : Container::dict);
    for (const auto& [k, v] : m) sd.set(key_to_string(k), ckpt::to_state_dict(v));
    return sd;
  }
  static LoadReport load_state_dict(M& m, const StateDict& sd, const LoadOptions& o) {
    expect_dict(sd, "a map");
    M out;
    LoadReport r;
    for (const auto& it : sd.items()) {
      V v{};
      if (auto old = m.find(key_from_string<K>(it.key)); old != m.end()) v = old->second;
      load_child(sd, it.key, v, o, r);
      out.emplace(key_from_string<K>(it.key), std::move(v));
    }
    m = std::move(out);
    return r;
  }
};
}  // namespace detail

template <class K, class V, class C, class A>
  requires((std::is_integral_v<K> || std::is_convertible_v<K, std::string>) && Checkpointable<V>)
struct checkpoint_traits<std::map<K, V, C, A>> : detail::map_traits<std::map<K, V, C, A>> {};

template <class K, class V, class H, class E, class A>
  requires((std::is_integral_v<K> || std::is_convertible_v<K, std::string>) && Checkpointable<V>)
struct checkpoint_traits<std::unordered_map<K, V, H, E, A>> : detail::map_traits<std::unordered_map<K, V, H, E, A>> {};

/// std::vector of non-element Checkpointables (e.g. layers): a list container with keys
/// "0", "1", ...; loading resizes the vector to what the file holds.
template <class T, class A>
  requires(!Element<T> && Checkpointable<T>)
struct checkpoint_traits<std::vector<T, A>> {
  static StateDict state_dict(const std::vector<T, A>& v) {
    StateDict sd = StateDict::dict(Container::list);
    for (std::size_t i = 0; i < v.size(); ++i) sd.set(std::to_string(i), ckpt::to_state_dict(v[i]));
    return sd;
  }
  static LoadReport load_state_dict(std::vector<T, A>& v, const StateDict& sd, const LoadOptions& o) {
    expect_dict(sd, "a vector");
    LoadReport r;
    v.resize(sd.size());
    for (std::size_t i = 0; i < v.size(); ++i) load_child(sd, std::to_string(i), v[i], o, r);
    return r;
  }
};

/// std::optional<T>: a null value when empty.
template <class T>
  requires Checkpointable<T>
struct checkpoint_traits<std::optional<T>> {
  static StateDict state_dict(const std::optional<T>& x) { return x ? ckpt::to_state_dict(*x) : StateDict(Value(nullptr)); }
  static LoadReport load_state_dict(std::optional<T>& x, const StateDict& sd, const LoadOptions& o) {
    if (sd.is_value() && sd.value().is_null()) {
      x.reset();
      return {};
    }
    if (!x) x.emplace();
    return ckpt::load_state_dict(*x, sd, o);
  }
};

}  // namespace ckpt
