// ckpt/types/scalar.hpp — built-in Checkpointables for leaves: arithmetic values and strings
// (JSON values), Tensor, and every TensorLike user type (tensor leaves, viewed without a copy).
#pragma once

#include <cmath>    // std::isfinite
#include <string>   // std::string
#include <type_traits>

#include "../concepts.hpp"  // checkpoint_traits, Checkpointable
#include "../detail/json_fields.hpp"  // number_as: range-checked numbers

namespace ckpt {

namespace detail {
inline std::string node_desc(const StateDict& sd) {
  if (sd.is_tensor()) return "tensor " + std::string(name(sd.tensor().dtype())) + shape_string(sd.tensor().shape());
  if (sd.is_value()) return std::string("value of type ") + sd.value().type_name();
  return "dict";
}
}  // namespace detail

/// bool, integers and floating point: JSON numbers (exact for integers; floats round-trip
/// through the shortest exact decimal). Non-finite floats, which JSON cannot hold, are stored
/// as 0-d tensors. Loading accepts a JSON number or a one-element tensor of the same kind.
template <class T>
  requires std::is_arithmetic_v<T>
struct checkpoint_traits<T> {
  static StateDict state_dict(const T& x) {
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(x)) return Tensor::scalar(x);
    }
    return StateDict(Value(x));
  }
  static LoadReport load_state_dict(T& x, const StateDict& sd, const LoadOptions&) {
    const std::string want = std::is_same_v<T, bool> ? "bool" : std::is_integral_v<T> ? "integer" : "number";
    if (sd.is_value()) {
      const Value& v = sd.value();
      if constexpr (std::is_same_v<T, bool>) {
        if (v.is_boolean()) { x = v.get<bool>(); return {}; }
      } else if constexpr (std::is_integral_v<T>) {
        if (v.is_number_integer()) {
          if (const auto i = detail::integer_as<T>(v)) { x = *i; return {}; }
          throw mismatch_error("integer out of range", "", want + " fitting " + std::to_string(sizeof(T)) + " bytes", v.dump());
        }
      } else if (v.is_number()) {  // a double beyond float's range would be undefined to convert
        if (const auto f = detail::number_as<T>(v)) { x = *f; return {}; }
        throw mismatch_error("number out of range", "", want + " fitting " + std::to_string(sizeof(T)) + " bytes", v.dump());
      }
    } else if (sd.is_tensor() && sd.tensor().numel() == 1 && sd.tensor().dtype() == dtype_of<T>) {
      x = sd.tensor().item<T>();
      return {};
    }
    throw mismatch_error("wrong kind of value", "", want, detail::node_desc(sd));
  }
};

/// std::string: a JSON string.
template <>
struct checkpoint_traits<std::string> {
  static StateDict state_dict(const std::string& x) { return StateDict(Value(x)); }
  static LoadReport load_state_dict(std::string& x, const StateDict& sd, const LoadOptions&) {
    if (!sd.is_value() || !sd.value().is_string()) throw mismatch_error("wrong kind of value", "", "string", detail::node_desc(sd));
    x = sd.value().get<std::string>();
    return {};
  }
};

/// Tensor: a tensor leaf. Loading into a tensor that already has a shape (a model parameter)
/// checks dtype and shape and copies in place, as torch's load_state_dict does; loading into
/// an empty (default) tensor adopts the stored one.
template <>
struct checkpoint_traits<Tensor> {
  static StateDict state_dict(const Tensor& t) { return StateDict(t); }
  static LoadReport load_state_dict(Tensor& t, const StateDict& sd, const LoadOptions&) {
    if (!sd.is_tensor()) throw mismatch_error("wrong kind of value", "", "tensor", detail::node_desc(sd));
    const Tensor& src = sd.tensor();
    const bool adopt = !t.writable() || (t.dim() == 1 && t.shape()[0] == 0);
    if (adopt) {
      t = src;
      return {};
    }
    check_assignable(src, t.dtype(), &t.shape());
    if (src.nbytes()) std::memcpy(t.mutable_data(), src.data(), src.nbytes());
    return {};
  }
};

/// Every TensorLike user type (and std::vector/std::array/std::span of elements): a tensor
/// leaf that views the object's memory (no copy; or the row-major copy a view() returning
/// Tensor made), loaded through tensor_traits<T>::assign.
template <class T>
  requires(TensorLike<T> && !std::is_arithmetic_v<T> && !std::is_same_v<T, Tensor>)
struct checkpoint_traits<T> {
  static StateDict state_dict(const T& x) { return StateDict(tensor_of(x)); }
  static LoadReport load_state_dict(T& x, const StateDict& sd, const LoadOptions&) {
    if (!sd.is_tensor()) throw mismatch_error("wrong kind of value", "", "tensor", detail::node_desc(sd));
    tensor_traits<T>::assign(x, sd.tensor());
    return {};
  }
};

/// StateDict itself: identity (a sub-tree stored as is).
template <>
struct checkpoint_traits<StateDict> {
  static StateDict state_dict(const StateDict& s) { return s; }
  static LoadReport load_state_dict(StateDict& s, const StateDict& sd, const LoadOptions&) {
    s = sd;
    return {};
  }
};

}  // namespace ckpt
