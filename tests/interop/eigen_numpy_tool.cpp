// Test tool for eigen_numpy.py: Eigen matrices through ckpt to NumPy and back.
//   write DIR   writes DIR/eigen.npz (every layout and many scalar types) and DIR/col_f64.npy
//   read FILE   loads FILE's arrays (written by NumPy, C and Fortran order) into Eigen types
// Both sides fill element k (the row-major index) from the same formula, see value().
#include <ckpt/ckpt.hpp>
#include <ckpt/integrations/eigen.hpp>

#include <Eigen/Core>
#include <complex>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace {
using Eigen::Dynamic;
using Eigen::RowMajor;

/// The formula eigen_numpy.py computes too: floats k/2 - 3, signed 3k - 7, unsigned 3k + 1,
/// bool k % 3 == 0, complex k/2 - 3 + (k % 5)i.
template <class S>
S value(Eigen::Index k) {
  const double f = static_cast<double>(k) * 0.5 - 3.0;
  if constexpr (std::is_same_v<S, bool>) return k % 3 == 0;
  else if constexpr (std::is_same_v<S, std::complex<float>> || std::is_same_v<S, std::complex<double>>) return S(static_cast<typename S::value_type>(f), static_cast<typename S::value_type>(k % 5));
  else if constexpr (std::is_floating_point_v<S>) return static_cast<S>(f);
  else if constexpr (std::is_signed_v<S> && std::is_integral_v<S>) return static_cast<S>(3 * k - 7);
  else if constexpr (std::is_unsigned_v<S>) return static_cast<S>(3 * k + 1);
  else return S(static_cast<float>(f));  // ckpt::float16, Eigen::half
}

template <class X>
X& fill(X& x) {
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j) x(i, j) = value<typename X::Scalar>(i * x.cols() + j);
  return x;
}

/// Load `key` of sd into a new X and check every element against the formula.
template <class X>
bool check(const ckpt::StateDict& sd, const std::string& key, X x, Eigen::Index rows, Eigen::Index cols) {
  ckpt::load_state_dict(x, sd.at(key));
  bool ok = x.rows() == rows && x.cols() == cols;
  for (Eigen::Index i = 0; ok && i < x.rows(); ++i)
    for (Eigen::Index j = 0; ok && j < x.cols(); ++j) ok = x(i, j) == value<typename X::Scalar>(i * x.cols() + j);
  if (!ok) std::cout << "MISMATCH reading '" << key << "' into a " << x.rows() << "x" << x.cols() << (X::IsRowMajor ? " row-major" : " column-major") << " Eigen object\n";
  return ok;
}

int write(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  Eigen::MatrixXd col_f64(3, 4);
  Eigen::Matrix<float, Dynamic, Dynamic, RowMajor> row_f32(2, 5);
  Eigen::Matrix<std::int32_t, 3, 2> fixed_i32;
  Eigen::VectorXd vec_f64(6);
  Eigen::Matrix<std::int64_t, 1, Dynamic> rowvec_i64(4);
  Eigen::Array<std::uint8_t, 2, 3> arr_u8;
  Eigen::Array<std::int16_t, Dynamic, Dynamic, RowMajor> arr_row_i16(3, 3);
  Eigen::Array<std::uint16_t, 2, 2> arr_u16;
  Eigen::Matrix<std::complex<double>, 2, 3> c128;
  Eigen::Matrix<std::complex<float>, Dynamic, Dynamic> c64(3, 2);
  Eigen::Matrix<Eigen::half, 2, 2> half;
  Eigen::Matrix<ckpt::float16, Dynamic, Dynamic> float16(2, 3);
  Eigen::Array<bool, 3, 3> boolean;
  std::vector<double> buffer(6);
  Eigen::Map<Eigen::MatrixXd> map_f64(buffer.data(), 3, 2);

  ckpt::StateDict sd;
  sd.set("col_f64", ckpt::to_state_dict(fill(col_f64)));
  sd.set("row_f32", ckpt::to_state_dict(fill(row_f32)));
  sd.set("fixed_i32", ckpt::to_state_dict(fill(fixed_i32)));
  sd.set("vec_f64", ckpt::to_state_dict(fill(vec_f64)));
  sd.set("rowvec_i64", ckpt::to_state_dict(fill(rowvec_i64)));
  sd.set("arr_u8", ckpt::to_state_dict(fill(arr_u8)));
  sd.set("arr_row_i16", ckpt::to_state_dict(fill(arr_row_i16)));
  sd.set("arr_u16", ckpt::to_state_dict(fill(arr_u16)));
  sd.set("c128", ckpt::to_state_dict(fill(c128)));
  sd.set("c64", ckpt::to_state_dict(fill(c64)));
  sd.set("half", ckpt::to_state_dict(fill(half)));
  sd.set("float16", ckpt::to_state_dict(fill(float16)));
  sd.set("bool", ckpt::to_state_dict(fill(boolean)));
  sd.set("map_f64", ckpt::to_state_dict(fill(map_f64)));
  ckpt::save(dir / "eigen.npz", sd);
  ckpt::save(dir / "col_f64.npy", col_f64);
  std::cout << "wrote " << sd.tensor_count() << " Eigen objects\n";
  return 0;
}

int read(const std::filesystem::path& file) {
  const ckpt::StateDict sd = ckpt::load(file);
  int ok = 0;
  ok += check(sd, "c_f64", Eigen::MatrixXd(), 3, 4);
  ok += check(sd, "c_f64", Eigen::Matrix<double, 3, 4, RowMajor>(), 3, 4);
  ok += check(sd, "f_f64", Eigen::MatrixXd(), 3, 4);
  ok += check(sd, "f_f64", Eigen::Matrix<double, Dynamic, Dynamic, RowMajor>(), 3, 4);
  ok += check(sd, "f_i32", Eigen::Matrix<std::int32_t, 2, 3>(), 2, 3);
  ok += check(sd, "vec_f32", Eigen::VectorXf(), 5, 1);
  ok += check(sd, "vec_f32", Eigen::Matrix<float, 1, Dynamic>(), 1, 5);
  ok += check(sd, "f_c64", Eigen::Matrix<std::complex<float>, 2, 2, RowMajor>(), 2, 2);
  ok += check(sd, "c_bool", Eigen::Array<bool, Dynamic, Dynamic>(), 2, 3);
  ok += check(sd, "f_u8", Eigen::Array<std::uint8_t, 3, 2, RowMajor>(), 3, 2);
  std::cout << "read ok " << ok << " of 10\n";
  return ok == 10 ? 0 : 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "write" && std::string(argv[1]) != "read")) {
    std::cerr << "usage: eigen_numpy_tool write DIR | read FILE\n";
    return 2;
  }
  try {
    return std::string(argv[1]) == "write" ? write(argv[2]) : read(argv[2]);
  } catch (const ckpt::error& e) {
    std::cout << e.what() << "\n";
    return 2;
  }
}
