// Adapting a user-defined matrix class with ckpt::tensor_traits: it is saved without a copy
// (the StateDict views the matrix's memory) and loaded back with a shape check.
#include <ckpt/ckpt.hpp>
#include <filesystem>
#include <iostream>

namespace linalg {
/// A row-major matrix of doubles, as a user's own code might have it.
class Matrix {
 public:
  Matrix(std::size_t r = 0, std::size_t c = 0) : rows_(r), cols_(c), data_(r * c) {}
  double& operator()(std::size_t i, std::size_t j) { return data_[i * cols_ + j]; }
  double operator()(std::size_t i, std::size_t j) const { return data_[i * cols_ + j]; }
  std::size_t rows() const { return rows_; }
  std::size_t cols() const { return cols_; }
  const double* data() const { return data_.data(); }
  double* data() { return data_.data(); }
  void resize(std::size_t r, std::size_t c) { rows_ = r; cols_ = c; data_.assign(r * c, 0.0); }

 private:
  std::size_t rows_, cols_;
  std::vector<double> data_;
};
}  // namespace linalg

template <>
struct ckpt::tensor_traits<linalg::Matrix> {
  static TensorView view(const linalg::Matrix& m) {
    return {DType::f64, {static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())},
            reinterpret_cast<const std::byte*>(m.data()), m.rows() * m.cols() * sizeof(double)};
  }
  static void assign(linalg::Matrix& m, const Tensor& t) {
    if (t.dtype() != DType::f64 || t.dim() != 2) throw mismatch_error("matrix needs a 2-D f64 tensor", "", "f64 2-D", std::string(name(t.dtype())) + " " + shape_string(t.shape()));
    m.resize(static_cast<std::size_t>(t.shape()[0]), static_cast<std::size_t>(t.shape()[1]));
    std::memcpy(m.data(), t.data(), t.nbytes());
  }
};

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
  linalg::Matrix m(2, 3);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j) m(i, j) = 10.0 * i + j;
  ckpt::StateDict sd;
  sd["projection"] = ckpt::to_state_dict(m);
  const bool zero_copy = sd.at("projection").tensor().data() == reinterpret_cast<const std::byte*>(m.data());
  ckpt::save(dir / "matrix.ckpt", sd);
  linalg::Matrix back;
  ckpt::load_state_dict(back, ckpt::load(dir / "matrix.ckpt").at("projection"));
  std::cout << "zero-copy save: " << zero_copy << "\n";
  std::cout << "loaded " << back.rows() << "x" << back.cols() << ", m(1,2) = " << back(1, 2) << "\n";
  return zero_copy && back.rows() == 2 && back(1, 2) == 12.0 ? 0 : 1;
}
