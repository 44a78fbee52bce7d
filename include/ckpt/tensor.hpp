// ckpt/tensor.hpp — tensors as the library stores them. `TensorView` is a non-owning
// (dtype, shape, bytes) triple; `Tensor` owns 64-byte aligned memory, or views memory kept
// alive by an owner (a shared read-only file mapping), or borrows caller memory for a
// zero-copy save. `tensor_traits<T>` adapts user tensor types; built in for std::vector,
// std::array, std::span and scalars.
#pragma once

#include <algorithm>    // std::copy_n, std::equal
#include <array>        // std::array adapter
#include <cstddef>      // std::byte
#include <cstdint>      // int64 shapes
#include <cstring>      // std::memcpy
#include <limits>       // overflow checks
#include <memory>       // shared ownership of buffers and mappings
#include <new>          // aligned operator new
#include <optional>     // checked sizes
#include <concepts>     // std::convertible_to
#include <initializer_list>  // Tensor::from
#include <span>         // byte spans, std::span adapter
#include <string>       // shape_string
#include <type_traits>  // traits detection
#include <utility>      // std::move, std::declval
#include <vector>       // shapes, std::vector adapter

#include "dtype.hpp"  // DType, dtype_of, element sizes
#include "error.hpp"  // mismatch_error, format_error
#include "fwd.hpp"    // default template argument of tensor_traits

namespace ckpt {

using Shape = std::vector<std::int64_t>;

/// "[2, 3]" — used in messages.
inline std::string shape_string(const Shape& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

/// Number of elements, or nullopt when a dimension is negative or the product overflows int64.
inline std::optional<std::int64_t> checked_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}
/// numel × element size, or nullopt on overflow.
inline std::optional<std::uint64_t> checked_nbytes(DType t, const Shape& s) {
  auto n = checked_numel(s);
  if (!n) return std::nullopt;
  const auto es = element_size(t);
  if (static_cast<std::uint64_t>(*n) > std::numeric_limits<std::uint64_t>::max() / 2 / es)
    return std::nullopt;
  return static_cast<std::uint64_t>(*n) * es;
}

/// Non-owning description of tensor data: dtype, shape, contiguous row-major bytes.
struct TensorView {
  DType dtype = DType::f32;
  Shape shape;
  const std::byte* data = nullptr;
  std::size_t nbytes = 0;

  std::int64_t numel() const { return static_cast<std::int64_t>(nbytes / element_size(dtype)); }
  std::span<const std::byte> bytes() const { return {data, nbytes}; }
};

/// A tensor: dtype, int64 shape and contiguous row-major bytes.
///
/// Copies are shallow (like torch.Tensor): they share the bytes. `clone()` deep-copies.
/// Kinds: owning (allocated here, 64-byte aligned, writable), mapped (views memory kept alive
/// by a shared owner such as a file mapping; read-only), borrowed (views caller memory with
/// no owner; used to save without copying — the caller keeps the memory alive).
class Tensor {
 public:
  static constexpr std::size_t alignment = 64;

  Tensor() : Tensor(DType::f32, Shape{0}) {}

  /// Allocate a zero-filled owning tensor. Throws mismatch_error on a bad shape.
  Tensor(DType dtype, Shape shape) : Tensor(dtype, std::move(shape), true) {}

  /// Allocate an owning tensor without initializing its bytes (like torch.empty): for readers
  /// that overwrite every byte at once, saving a pass over memory.
  static Tensor empty(DType dtype, Shape shape) { return Tensor(dtype, std::move(shape), false); }

  /// An owning tensor holding a copy of `v`.
  static Tensor copy_of(const TensorView& v) {
    Tensor t = empty(v.dtype, v.shape);
    if (v.nbytes != t.nbytes_) throw mismatch_error("tensor byte size does not match its shape", "", std::to_string(t.nbytes_) + " bytes", std::to_string(v.nbytes) + " bytes");
    if (v.nbytes) std::memcpy(t.data_, v.data, v.nbytes);
    return t;
  }
  /// A tensor viewing `v` without copying; the caller keeps the memory alive while it is used.
  static Tensor borrow(const TensorView& v) {
    Tensor t = view_of(v, nullptr);
    return t;
  }
  /// A read-only tensor viewing memory kept alive by `owner` (e.g. a file mapping).
  static Tensor view_of(const TensorView& v, std::shared_ptr<const void> owner) {
    auto nb = checked_nbytes(v.dtype, v.shape);
    if (!nb || *nb != v.nbytes) throw mismatch_error("tensor byte size does not match its shape", "", nb ? std::to_string(*nb) + " bytes" : "a valid shape", std::to_string(v.nbytes) + " bytes");
    Tensor t(no_alloc{});
    t.dtype_ = v.dtype;
    t.shape_ = v.shape;
    t.nbytes_ = v.nbytes;
    t.data_ = const_cast<std::byte*>(v.data);
    t.owner_ = std::move(owner);
    t.writable_ = false;
    return t;
  }
  /// A 1-D (or `shape`d) owning tensor from typed values.
  template <Element T>
  static Tensor from(std::span<const T> values, Shape shape = {}) {
    if (shape.empty() && values.size() != 1) shape = {static_cast<std::int64_t>(values.size())};
    return copy_of({dtype_of<T>, std::move(shape), reinterpret_cast<const std::byte*>(values.data()), values.size_bytes()});
  }
  template <Element T>
  static Tensor from(std::initializer_list<T> values, Shape shape = {}) {
    return from(std::span<const T>(values.begin(), values.size()), std::move(shape));
  }
  /// A 0-d tensor holding one value.
  template <Element T>
  static Tensor scalar(T value) {
    return copy_of({dtype_of<T>, {}, reinterpret_cast<const std::byte*>(&value), sizeof(T)});
  }

  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  std::size_t dim() const noexcept { return shape_.size(); }
  std::int64_t numel() const { return static_cast<std::int64_t>(nbytes_ / element_size(dtype_)); }
  std::size_t nbytes() const noexcept { return nbytes_; }
  /// True for tensors allocated here; mapped and borrowed tensors are read-only.
  bool writable() const noexcept { return writable_; }
  /// True when the bytes belong to a shared owner other than a plain allocation (a mapping).
  bool is_view() const noexcept { return !writable_; }

  const std::byte* data() const noexcept { return data_; }
  std::byte* mutable_data() {
    if (!writable_) throw unsupported_error("tensor is a read-only view; clone() it to write");
    return data_;
  }
  std::span<const std::byte> bytes() const noexcept { return {data_, nbytes_}; }
  TensorView view() const { return {dtype_, shape_, data_, nbytes_}; }
  operator TensorView() const { return view(); }

  /// Typed read access; throws mismatch_error when T's dtype differs.
  template <Element T>
  std::span<const T> values() const {
    check<T>();
    return {reinterpret_cast<const T*>(data_), nbytes_ / sizeof(T)};
  }
  /// Typed write access (owning tensors only).
  template <Element T>
  std::span<T> mutable_values() {
    check<T>();
    return {reinterpret_cast<T*>(mutable_data()), nbytes_ / sizeof(T)};
  }
  /// The single value of a 0-d or one-element tensor.
  template <Element T>
  T item() const {
    auto v = values<T>();
    if (v.size() != 1) throw mismatch_error("item() needs a tensor with one element", "", "1 element", std::to_string(v.size()) + " elements");
    return v[0];
  }

  /// A deep, owning, writable copy.
  Tensor clone() const { return copy_of(view()); }
  /// Same dtype, shape and bytes.
  friend bool operator==(const Tensor& a, const Tensor& b) {
    return a.dtype_ == b.dtype_ && a.shape_ == b.shape_ && a.nbytes_ == b.nbytes_ &&
           (a.nbytes_ == 0 || std::memcmp(a.data_, b.data_, a.nbytes_) == 0);
  }
  /// The shared owner (mapping or allocation); null for borrowed tensors.
  const std::shared_ptr<const void>& owner() const noexcept { return owner_; }

 private:
  struct no_alloc {};
  explicit Tensor(no_alloc) {}
  Tensor(DType dtype, Shape shape, bool zero) : dtype_(dtype), shape_(std::move(shape)) {
    auto nb = checked_nbytes(dtype_, shape_);
    if (!nb) throw mismatch_error("invalid tensor shape", "", "non-negative dims whose product fits in int64", shape_string(shape_));
    nbytes_ = static_cast<std::size_t>(*nb);
    auto* p = static_cast<std::byte*>(::operator new(nbytes_ ? nbytes_ : 1, std::align_val_t{alignment}));
    if (zero) std::memset(p, 0, nbytes_);
    owner_ = std::shared_ptr<std::byte>(p, [](std::byte* q) { ::operator delete(q, std::align_val_t{alignment}); });
    data_ = p;
    writable_ = true;
  }
  template <class T>
  void check() const {
    if (dtype_of<T> != dtype_) throw mismatch_error("typed access with the wrong dtype", "", std::string(name(dtype_)), std::string(name(dtype_of<T>)));
  }

  DType dtype_ = DType::f32;
  Shape shape_;
  std::size_t nbytes_ = 0;
  std::byte* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  bool writable_ = false;
};

// ---- tensor_traits: adapting user tensor types -------------------------------------------

/// Specialize to make a user tensor type storable without a copy on save. Provide
///   static TensorView view(const T&);                 // dtype, shape, contiguous bytes
///   static void assign(T&, const Tensor&);            // load: copy (and resize) from a tensor
/// A type whose memory is not contiguous row-major (a column-major matrix, a strided view)
/// returns `Tensor` from view() instead: a row-major copy, or Tensor::borrow of its memory when
/// that happens to be row-major at run time. tensor_of() takes either.
/// The primary template is disabled: "not specialized" is detectable (TensorLike is false).
template <class T, class>
struct tensor_traits {
  tensor_traits() = delete;  // not specialized
};

/// A type that tensor_traits adapts.
template <class T>
concept TensorLike = requires(const T& c, T& m, const Tensor& t) {
  { tensor_traits<T>::view(c) } -> std::convertible_to<TensorView>;
  tensor_traits<T>::assign(m, t);
};

/// Check that `t` can fill a destination of `want_dtype` (and `want_shape`, unless null); throws
/// mismatch_error with expected and got. For tensor_traits and load_state_dict written by users.
inline void check_assignable(const Tensor& t, DType want_dtype, const Shape* want_shape) {
  if (t.dtype() != want_dtype) throw mismatch_error("dtype mismatch", "", std::string(name(want_dtype)), std::string(name(t.dtype())));
  if (want_shape && *want_shape != t.shape()) throw mismatch_error("shape mismatch", "", shape_string(*want_shape), shape_string(t.shape()));
}

/// std::vector<T> of elements: a 1-D tensor; loading resizes the vector.
template <Element T, class A>
  requires(!std::is_same_v<T, bool>)
struct tensor_traits<std::vector<T, A>> {
  static TensorView view(const std::vector<T, A>& v) {
    return {dtype_of<T>, {static_cast<std::int64_t>(v.size())}, reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(T)};
  }
  static void assign(std::vector<T, A>& v, const Tensor& t) {
    check_assignable(t, dtype_of<T>, nullptr);
    if (t.dim() != 1) throw mismatch_error("shape mismatch", "", "a 1-D tensor", shape_string(t.shape()));
    auto src = t.values<T>();
    v.assign(src.begin(), src.end());
  }
};

/// std::array<T, N>: a 1-D tensor of exactly N elements.
template <Element T, std::size_t N>
struct tensor_traits<std::array<T, N>> {
  static TensorView view(const std::array<T, N>& v) {
    return {dtype_of<T>, {static_cast<std::int64_t>(N)}, reinterpret_cast<const std::byte*>(v.data()), N * sizeof(T)};
  }
  static void assign(std::array<T, N>& v, const Tensor& t) {
    const Shape want{static_cast<std::int64_t>(N)};
    check_assignable(t, dtype_of<T>, &want);
    std::copy_n(t.values<T>().begin(), N, v.begin());
  }
};

/// std::span<T>: a 1-D tensor viewing the span; loading copies into it (sizes must match).
template <Element T, std::size_t E>
struct tensor_traits<std::span<T, E>> {
  static TensorView view(const std::span<T, E>& v) {
    return {dtype_of<T>, {static_cast<std::int64_t>(v.size())}, reinterpret_cast<const std::byte*>(v.data()), v.size_bytes()};
  }
  static void assign(std::span<T, E>& v, const Tensor& t) {
    const Shape want{static_cast<std::int64_t>(v.size())};
    check_assignable(t, dtype_of<std::remove_cv_t<T>>, &want);
    if constexpr (!std::is_const_v<T>) std::copy_n(t.values<std::remove_cv_t<T>>().begin(), v.size(), v.begin());
    else throw unsupported_error("cannot load into a span of const elements");
  }
};

/// Tensor itself: identity.
template <>
struct tensor_traits<Tensor> {
  static TensorView view(const Tensor& t) { return t.view(); }
  static void assign(Tensor& dst, const Tensor& t) { dst = t; }
};

/// Scalars: 0-d tensors. (As Checkpointable values, scalars are stored as JSON numbers; this
/// adapter is for code that wants a 0-d tensor explicitly, e.g. Tensor::scalar.)
template <Element T>
struct tensor_traits<T> {
  static TensorView view(const T& v) { return {dtype_of<T>, {}, reinterpret_cast<const std::byte*>(&v), sizeof(T)}; }
  static void assign(T& v, const Tensor& t) {
    check_assignable(t, dtype_of<T>, nullptr);
    v = t.item<T>();
  }
};

/// True when tensor_traits<T>::view returns a Tensor (a copy, or a borrow decided at run time)
/// rather than a plain view of the object's memory.
template <TensorLike T>
inline constexpr bool view_returns_tensor = std::is_same_v<std::remove_cvref_t<decltype(tensor_traits<T>::view(std::declval<const T&>()))>, Tensor>;

/// A non-owning view of a TensorLike value whose view() views its memory.
template <TensorLike T>
  requires(!view_returns_tensor<T>)
TensorView as_view(const T& x) { return tensor_traits<T>::view(x); }

/// The tensor of any TensorLike value: borrows its memory (no copy) when view() views it, or
/// is the Tensor view() returned.
template <TensorLike T>
Tensor tensor_of(const T& x) {
  if constexpr (view_returns_tensor<T>) return tensor_traits<T>::view(x);
  else return Tensor::borrow(tensor_traits<T>::view(x));
}

}  // namespace ckpt
