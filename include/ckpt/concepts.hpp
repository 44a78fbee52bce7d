// ckpt/concepts.hpp — the front door: the Checkpointable concept and its three routes
// (members, ADL free functions, checkpoint_traits), the to_state_dict / load_state_dict
// customization-point objects, CKPT_FIELDS for aggregates, and the archive concepts.
#pragma once

#include <concepts>     // std::convertible_to
#include <cstddef>      // std::byte
#include <span>         // read destinations
#include <string>       // keys
#include <string_view>  // keys
#include <type_traits>  // dispatch
#include <vector>       // entry lists

#include "error.hpp"       // mismatch_error, key_error
#include "state_dict.hpp"  // StateDict, LoadOptions, LoadReport
#include "tensor.hpp"      // Tensor, TensorView
#include "traits.hpp"      // checkpoint_traits, archive_traits

namespace ckpt {

namespace detail {
// Poison pills: ADL lookup of the hooks must not find ckpt's own CPO objects.
void state_dict() = delete;
void load_state_dict() = delete;

template <class T>
concept has_traits_hooks = requires(const T& c, T& m, const StateDict& s, const LoadOptions& o) {
  { checkpoint_traits<T>::state_dict(c) } -> std::convertible_to<StateDict>;
  { checkpoint_traits<T>::load_state_dict(m, s, o) } -> std::same_as<LoadReport>;
};
template <class T>
concept has_member_hooks = requires(const T& c, T& m, const StateDict& s, const LoadOptions& o) {
  { c.state_dict() } -> std::convertible_to<StateDict>;
  { m.load_state_dict(s, o) } -> std::same_as<LoadReport>;
};
template <class T>
concept has_adl_hooks = requires(const T& c, T& m, const StateDict& s, const LoadOptions& o) {
  { state_dict(c) } -> std::convertible_to<StateDict>;
  { load_state_dict(m, s, o) } -> std::same_as<LoadReport>;
};
template <class T>
inline constexpr int hook_count = int(has_traits_hooks<T>) + int(has_member_hooks<T>) + int(has_adl_hooks<T>);
template <class>
inline constexpr bool always_false = false;
}  // namespace detail

/// A type whose state can be saved and restored, through exactly one of:
///  (a) members   `StateDict state_dict() const` and
///                `LoadReport load_state_dict(const StateDict&, const LoadOptions&)` (PyTorch's shape);
///  (b) free functions found by ADL: `StateDict state_dict(const T&)` and
///                `LoadReport load_state_dict(T&, const StateDict&, const LoadOptions&)`;
///  (c) a `checkpoint_traits<T>` specialization with those two as static members.
/// CKPT_FIELDS(T, a, b, ...) writes (b) for an aggregate.
template <class T>
concept Checkpointable = detail::hook_count<std::remove_cvref_t<T>> >= 1;

namespace detail {
template <class T>
void diagnose() {
  using U = std::remove_cvref_t<T>;
  if constexpr (hook_count<U> == 0)
    static_assert(always_false<U>,
                  "ckpt: type is not Checkpointable. Fix: add members `ckpt::StateDict state_dict() const` "
                  "and `ckpt::LoadReport load_state_dict(const ckpt::StateDict&, const ckpt::LoadOptions&)`, "
                  "or the same as free functions next to the type (found by ADL), or specialize "
                  "ckpt::checkpoint_traits<T>, or write CKPT_FIELDS(T, member1, member2, ...) for an aggregate.");
  else if constexpr (hook_count<U> > 1)
    static_assert(always_false<U>,
                  "ckpt: type has more than one way to be Checkpointable (members, ADL functions, "
                  "checkpoint_traits). Fix: keep exactly one of them.");
}

struct to_state_dict_fn {
  template <class T>
  StateDict operator()(const T& x) const {
    using U = std::remove_cvref_t<T>;
    diagnose<U>();
    if constexpr (has_traits_hooks<U>) return checkpoint_traits<U>::state_dict(x);
    else if constexpr (has_member_hooks<U>) return x.state_dict();
    else if constexpr (has_adl_hooks<U>) return state_dict(x);
    else return {};
  }
};
struct load_state_dict_fn {
  template <class T>
  LoadReport operator()(T& x, const StateDict& sd, const LoadOptions& o = {}) const {
    using U = std::remove_cvref_t<T>;
    diagnose<U>();
    if constexpr (has_traits_hooks<U>) return checkpoint_traits<U>::load_state_dict(x, sd, o);
    else if constexpr (has_member_hooks<U>) return x.load_state_dict(sd, o);
    else if constexpr (has_adl_hooks<U>) return load_state_dict(x, sd, o);
    else return {};
  }
};
}  // namespace detail

inline namespace cpo {
/// The StateDict of any Checkpointable value.
inline constexpr detail::to_state_dict_fn to_state_dict{};
/// Load a StateDict into any Checkpointable object; returns what did not match.
inline constexpr detail::load_state_dict_fn load_state_dict{};
}  // namespace cpo

/// Require `sd` to be a dict node; `what` names the destination in the message.
inline void expect_dict(const StateDict& sd, std::string_view what = "an object") {
  if (!sd.is_dict())
    throw mismatch_error("cannot load " + std::string(what) + " from a non-dict node", "", "dict",
                         std::string(StateDict::kind_name(sd.kind())));
}

/// Rethrow a mismatch from below with `key` prefixed to its key path.
[[noreturn]] inline void rethrow_with_prefix(const mismatch_error& e, const KeyPath& prefix) {
  const std::string p = prefix.str();
  throw mismatch_error(e.reason(), e.key().empty() ? p : p + "." + e.key(), e.expected(), e.got(), e.path());
}

/// Load child `key` of dict `sd` into `field`. Missing -> report.missing; a mismatch either
/// raises mismatch_error with the full key path or, with skip_mismatched, is reported.
template <class T>
void load_child(const StateDict& sd, std::string_view key, T& field, const LoadOptions& o, LoadReport& r) {
  const StateDict* c = sd.find_key(key);
  const KeyPath kp{std::string(key)};
  if (!c) {
    r.missing.push_back(kp.str());
    return;
  }
  try {
    r.merge(ckpt::load_state_dict(field, *c, o), kp);
  } catch (const mismatch_error& e) {
    if (!o.skip_mismatched) rethrow_with_prefix(e, kp);
    const std::string k = e.key().empty() ? kp.str() : kp.str() + "." + e.key();
    r.mismatched.push_back(k + " (expected " + e.expected() + ", got " + e.got() + ")");
  }
}

/// Report every direct child of `sd` whose key is not in `known` as unexpected.
inline void report_unexpected(const StateDict& sd, std::initializer_list<std::string_view> known, LoadReport& r) {
  for (const auto& it : sd.items()) {
    bool found = false;
    for (auto k : known) found = found || k == it.key;
    if (!found) {
      for (const auto& [p, leaf] : it.value.flatten()) r.unexpected.push_back((KeyPath{it.key} / p).str());
      if (it.value.is_dict() && it.value.empty()) r.unexpected.push_back(KeyPath{it.key}.str());
    }
  }
}

// ---- CKPT_FIELDS ---------------------------------------------------------------------------

#define CKPT_DETAIL_EXPAND(x) x
#define CKPT_DETAIL_GET(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, NAME, ...) NAME
#define CKPT_DETAIL_FE1(F, a) F(a)
#define CKPT_DETAIL_FE2(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE1(F, __VA_ARGS__))
#define CKPT_DETAIL_FE3(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE2(F, __VA_ARGS__))
#define CKPT_DETAIL_FE4(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE3(F, __VA_ARGS__))
#define CKPT_DETAIL_FE5(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE4(F, __VA_ARGS__))
#define CKPT_DETAIL_FE6(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE5(F, __VA_ARGS__))
#define CKPT_DETAIL_FE7(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE6(F, __VA_ARGS__))
#define CKPT_DETAIL_FE8(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE7(F, __VA_ARGS__))
#define CKPT_DETAIL_FE9(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE8(F, __VA_ARGS__))
#define CKPT_DETAIL_FE10(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE9(F, __VA_ARGS__))
#define CKPT_DETAIL_FE11(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE10(F, __VA_ARGS__))
#define CKPT_DETAIL_FE12(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE11(F, __VA_ARGS__))
#define CKPT_DETAIL_FE13(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE12(F, __VA_ARGS__))
#define CKPT_DETAIL_FE14(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE13(F, __VA_ARGS__))
#define CKPT_DETAIL_FE15(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE14(F, __VA_ARGS__))
#define CKPT_DETAIL_FE16(F, a, ...) F(a) CKPT_DETAIL_EXPAND(CKPT_DETAIL_FE15(F, __VA_ARGS__))
#define CKPT_DETAIL_FOR_EACH(F, ...)                                                              \
  CKPT_DETAIL_EXPAND(CKPT_DETAIL_GET(__VA_ARGS__, CKPT_DETAIL_FE16, CKPT_DETAIL_FE15,           \
                                     CKPT_DETAIL_FE14, CKPT_DETAIL_FE13, CKPT_DETAIL_FE12,        \
                                     CKPT_DETAIL_FE11, CKPT_DETAIL_FE10, CKPT_DETAIL_FE9,         \
                                     CKPT_DETAIL_FE8, CKPT_DETAIL_FE7, CKPT_DETAIL_FE6,           \
                                     CKPT_DETAIL_FE5, CKPT_DETAIL_FE4, CKPT_DETAIL_FE3,           \
                                     CKPT_DETAIL_FE2, CKPT_DETAIL_FE1)(F, __VA_ARGS__))
#define CKPT_DETAIL_SAVE_FIELD(f) sd_.set(#f, ::ckpt::to_state_dict(x_.f));
#define CKPT_DETAIL_LOAD_FIELD(f) ::ckpt::load_child(sd_, #f, x_.f, o_, r_);
#define CKPT_DETAIL_NAME_FIELD(f) #f,

/// Make aggregate `Type` Checkpointable field by field (up to 16 fields). Use it in the
/// namespace of Type (it defines the ADL hooks there). Keys are the member names.
#define CKPT_FIELDS(Type, ...)                                                                    \
  [[maybe_unused]] inline ::ckpt::StateDict state_dict(const Type& x_) {                         \
    ::ckpt::StateDict sd_;                                                                        \
    CKPT_DETAIL_FOR_EACH(CKPT_DETAIL_SAVE_FIELD, __VA_ARGS__)                                     \
    return sd_;                                                                                   \
  }                                                                                               \
  [[maybe_unused]] inline ::ckpt::LoadReport load_state_dict(Type& x_, const ::ckpt::StateDict& sd_, \
                                                             const ::ckpt::LoadOptions& o_) {     \
    ::ckpt::LoadReport r_;                                                                        \
    ::ckpt::expect_dict(sd_, #Type);                                                              \
    CKPT_DETAIL_FOR_EACH(CKPT_DETAIL_LOAD_FIELD, __VA_ARGS__)                                     \
    ::ckpt::report_unexpected(sd_, {CKPT_DETAIL_FOR_EACH(CKPT_DETAIL_NAME_FIELD, __VA_ARGS__)}, r_); \
    return r_;                                                                                    \
  }

// ---- archive concepts ----------------------------------------------------------------------

/// One stored tensor as an input archive lists it, before any data is read.
struct EntryInfo {
  KeyPath path;
  DType dtype = DType::f32;
  Shape shape;
  std::uint64_t nbytes = 0;         ///< decoded size: numel × element size
  std::uint64_t stored_nbytes = 0;  ///< size on disk (differs when compressed)
  std::string codec = "raw";
};

/// The writing side of a backend. It receives, depth first in insertion order:
///   begin_group(path, container) / end_group(path)   — optional hooks around each dict node
///   write_tensor(path, view)                          — each tensor leaf
///   write_value(path, json)                           — each value leaf
/// and finally commit(). Binary formats may ignore the group hooks (they have empty defaults).
template <class A>
concept OutputArchive = requires(A& a, const KeyPath& p, const TensorView& t, const Value& v) {
  a.write_tensor(p, t);
  a.write_value(p, v);
  a.commit();
};

/// The reading side: lists entries without reading data, reads one entry into caller memory or
/// as a tensor (owning, or viewing a mapping when opened with mmap), and returns the skeleton
/// of the tree (detail/skeleton.hpp), or null for a flat file whose entries are the whole tree.
template <class A>
concept InputArchive = requires(A& a, std::size_t i, std::span<std::byte> dst) {
  { a.entries() } -> std::convertible_to<const std::vector<EntryInfo>&>;
  a.read_into(i, dst);
  { a.read_tensor(i) } -> std::same_as<Tensor>;
  { a.skeleton() } -> std::convertible_to<Value>;
};

/// A format tag with a complete archive_traits specialization.
template <class F>
concept ArchiveFormat = requires(std::span<const std::byte> head) {
  { archive_traits<F>::name } -> std::convertible_to<std::string_view>;
  archive_traits<F>::extensions;
  { archive_traits<F>::caps } -> std::convertible_to<ArchiveCaps>;
  { archive_traits<F>::sniff(head) } -> std::same_as<bool>;
  requires OutputArchive<typename archive_traits<F>::output_archive>;
  requires InputArchive<typename archive_traits<F>::input_archive>;
};

}  // namespace ckpt

#include "types/containers.hpp"  // built-in Checkpointables: maps, optional, vectors
#include "types/random.hpp"      // standard random engines
#include "types/scalar.hpp"      // arithmetic, strings, tensors
