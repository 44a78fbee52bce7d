// ckpt/integrations/eigen.hpp — Eigen's dense matrices and arrays as ckpt tensors. Include it
// (and link Eigen3::Eigen) to save and load `Eigen::Matrix`, `Eigen::Array` and `Eigen::Map`
// of them like any other tensor; ckpt's core never includes Eigen.
//
// A tensor holds what NumPy and torch see: the logical shape — `[rows, cols]`, or `[n]` for a
// type that is a vector at compile time (one column or one row) — and the values in row-major
// order. Row-major storage and vectors are saved without a copy; a column-major matrix is
// saved as a row-major (transposed) copy. Loading resizes the dynamic dimensions and checks the
// fixed ones (mismatch_error: expected vs got, with the key path added by the caller). A Map is
// saved without a copy when its memory is row-major contiguous, and loads in place: its shape
// must match, since a Map cannot resize.
//
// Scalars: every ckpt element type (float, double, the integer types, bool, std::complex<float>
// and <double>, ckpt::float16 / bfloat16 / float8), plus Eigen::half (f16) and
// Eigen::bfloat16 (bf16).
#pragma once

#include <Eigen/Core>  // Matrix, Array, Map, half, bfloat16

#include <cstring>      // std::memcpy
#include <string>       // expected-shape text
#include <type_traits>  // storage dispatch

#include "../error.hpp"   // mismatch_error, unsupported_error
#include "../tensor.hpp"  // Tensor, TensorView, tensor_traits, check_assignable

namespace ckpt {
namespace detail::eigen {

/// The DType of an Eigen scalar type (no `value` when there is none).
template <class S>
struct scalar_dtype {};
template <Element S>
struct scalar_dtype<S> {
  static constexpr DType value = dtype_of<S>;
};
template <>
struct scalar_dtype<Eigen::half> {
  static constexpr DType value = DType::f16;
};
template <>
struct scalar_dtype<Eigen::bfloat16> {
  static constexpr DType value = DType::bf16;
};
template <class S>
concept Scalar = requires { scalar_dtype<S>::value; } && sizeof(S) == element_size(scalar_dtype<S>::value);

/// The element type's dtype of a dense Eigen type.
template <class X>
inline constexpr DType dtype_v = scalar_dtype<typename X::Scalar>::value;

/// A vector at compile time is stored as a 1-D tensor.
template <class X>
inline constexpr bool is_vector = X::IsVectorAtCompileTime != 0;

template <class X>
Shape logical_shape(const X& x) {
  if constexpr (is_vector<X>) return {static_cast<std::int64_t>(x.size())};
  else return {static_cast<std::int64_t>(x.rows()), static_cast<std::int64_t>(x.cols())};
}

/// True when x's memory holds its values in row-major order without gaps.
template <class X>
bool row_major_contiguous(const X& x) {
  return (x.cols() <= 1 || x.colStride() == 1) && (x.rows() <= 1 || x.rowStride() == x.cols());
}

/// A row-major Eigen map over `t`'s values with x's dimensions (x already has t's shape).
template <class X, class P>
auto row_major_map(P* data, const X& x) {
  using S = typename X::Scalar;
  using M = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Mapped = std::conditional_t<std::is_const_v<P>, const M, M>;
  return Eigen::Map<Mapped>(reinterpret_cast<std::conditional_t<std::is_const_v<P>, const S*, S*>>(data), x.rows(), x.cols());
}

/// A new tensor holding x's values in row-major order.
template <class X>
Tensor row_major_copy(const X& x) {
  Tensor t = Tensor::empty(dtype_v<X>, logical_shape(x));
  if (x.size()) row_major_map(t.mutable_data(), x) = x.matrix();
  return t;
}

/// Borrow x's memory when it is row-major contiguous, else copy it into row-major order.
template <class X>
Tensor borrow_or_copy(const X& x) {
  if (!row_major_contiguous(x)) return row_major_copy(x);
  return Tensor::borrow({dtype_v<X>, logical_shape(x), reinterpret_cast<const std::byte*>(x.data()),
                         static_cast<std::size_t>(x.size()) * sizeof(typename X::Scalar)});
}

/// Write t's row-major values into x, whose dimensions already equal t's shape.
template <class X>
void copy_in(X& x, const Tensor& t) {
  if (x.size() == 0) return;
  if (row_major_contiguous(x)) std::memcpy(static_cast<void*>(x.data()), t.data(), t.nbytes());
  else x.matrix() = row_major_map(t.data(), x);
}

/// "[3, 4]", "[*, *]" (dynamic), "[3, <=8]" (dynamic with a compile-time maximum).
template <class X>
std::string expected_shape() {
  auto dim = [](int fixed, int max) {
    if (fixed != Eigen::Dynamic) return std::to_string(fixed);
    return max != Eigen::Dynamic ? "<=" + std::to_string(max) : std::string("*");
  };
  if constexpr (is_vector<X>) return "[" + dim(X::SizeAtCompileTime, X::MaxSizeAtCompileTime) + "]";
  else return "[" + dim(X::RowsAtCompileTime, X::MaxRowsAtCompileTime) + ", " + dim(X::ColsAtCompileTime, X::MaxColsAtCompileTime) + "]";
}

/// Does a tensor of shape s fit a dimension of X (fixed size, or dynamic up to a maximum)?
inline bool fits(std::int64_t got, int fixed, int max) {
  if (fixed != Eigen::Dynamic) return got == fixed;
  return max == Eigen::Dynamic || got <= max;
}

/// tensor_traits of Eigen::Matrix and Eigen::Array (plain objects: they own their memory).
template <class X>
struct dense_traits {
  /// Row-major storage and vectors: a view of the memory; column-major: a row-major copy.
  static auto view(const X& x) {
    if constexpr (is_vector<X> || X::IsRowMajor)
      return TensorView{dtype_v<X>, logical_shape(x), reinterpret_cast<const std::byte*>(x.data()),
                        static_cast<std::size_t>(x.size()) * sizeof(typename X::Scalar)};
    else
      return row_major_copy(x);
  }
  /// Resize the dynamic dimensions to t's shape, check the fixed ones, copy the values.
  static void assign(X& x, const Tensor& t) {
    check_assignable(t, dtype_v<X>, nullptr);
    const Shape& s = t.shape();
    bool ok;
    if constexpr (is_vector<X>) ok = s.size() == 1 && fits(s[0], X::SizeAtCompileTime, X::MaxSizeAtCompileTime);
    else ok = s.size() == 2 && fits(s[0], X::RowsAtCompileTime, X::MaxRowsAtCompileTime) && fits(s[1], X::ColsAtCompileTime, X::MaxColsAtCompileTime);
    if (!ok) throw mismatch_error("shape mismatch", "", expected_shape<X>(), shape_string(s));
    if constexpr (is_vector<X>) x.resize(static_cast<Eigen::Index>(s[0]));
    else x.resize(static_cast<Eigen::Index>(s[0]), static_cast<Eigen::Index>(s[1]));
    copy_in(x, t);
  }
};

}  // namespace detail::eigen

/// Eigen::Matrix of any ckpt scalar, fixed or dynamic, either storage order.
template <class S, int R, int C, int O, int MR, int MC>
  requires detail::eigen::Scalar<S>
struct tensor_traits<Eigen::Matrix<S, R, C, O, MR, MC>> : detail::eigen::dense_traits<Eigen::Matrix<S, R, C, O, MR, MC>> {};

/// Eigen::Array: the same as Matrix.
template <class S, int R, int C, int O, int MR, int MC>
  requires detail::eigen::Scalar<S>
struct tensor_traits<Eigen::Array<S, R, C, O, MR, MC>> : detail::eigen::dense_traits<Eigen::Array<S, R, C, O, MR, MC>> {};

/// Eigen::Map of a Matrix or Array (const or not, any strides): saved without a copy when its
/// memory is row-major contiguous (else as a row-major copy); loads in place, and only a tensor
/// of exactly its shape, since a Map cannot resize.
template <class P, int MapOptions, class StrideType>
  requires detail::eigen::Scalar<typename P::Scalar> && (std::is_base_of_v<Eigen::PlainObjectBase<std::remove_const_t<P>>, std::remove_const_t<P>>)
struct tensor_traits<Eigen::Map<P, MapOptions, StrideType>> {
  using X = Eigen::Map<P, MapOptions, StrideType>;
  static Tensor view(const X& x) { return detail::eigen::borrow_or_copy(x); }
  static void assign(X& x, const Tensor& t) {
    if constexpr (std::is_const_v<P>) {
      (void)x;
      (void)t;
      throw unsupported_error("cannot load into an Eigen::Map of const values");
    } else {
      const Shape want = detail::eigen::logical_shape(x);
      check_assignable(t, detail::eigen::dtype_v<X>, &want);
      detail::eigen::copy_in(x, t);
    }
  }
};

}  // namespace ckpt
