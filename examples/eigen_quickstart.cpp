// Eigen matrices in a checkpoint: include <ckpt/integrations/eigen.hpp> and Eigen::Matrix,
// Eigen::Array and Eigen::Map are tensors, stored with their logical shape and row-major values
// (np.load("layer.npz")["weight"] is the same 3x4 matrix). Dynamic ones resize on load; fixed
// ones check the shape.
#include <ckpt/ckpt.hpp>
#include <ckpt/integrations/eigen.hpp>

#include <Eigen/Core>
#include <filesystem>
#include <iostream>

struct Layer {
  Eigen::MatrixXf weight;  // column-major: saved as a row-major copy
  Eigen::VectorXf bias;    // a vector: saved as [3], without a copy
};
CKPT_FIELDS(Layer, weight, bias)

struct FixedLayer {
  Eigen::Matrix<float, 4, 3, Eigen::RowMajor> weight;  // fixed size: the shape must match
  Eigen::Vector3f bias;
};
CKPT_FIELDS(FixedLayer, weight, bias)

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
  const Layer layer{Eigen::MatrixXf::Random(3, 4), Eigen::VectorXf::LinSpaced(3, 0.0f, 1.0f)};
  ckpt::save(dir / "layer.npz", layer);

  Layer back;                                  // empty: loading resizes it
  ckpt::load_into(dir / "layer.npz", back);
  const bool equal = back.weight == layer.weight && back.bias == layer.bias;
  std::cout << "weight " << back.weight.rows() << "x" << back.weight.cols() << ", equal: " << equal << "\n";

  FixedLayer fixed;                            // a fixed 4x3 weight cannot take a 3x4 one
  bool refused = false;
  try {
    ckpt::load_into(dir / "layer.npz", fixed);
  } catch (const ckpt::mismatch_error& e) {
    refused = true;
    std::cout << e.what() << "\n";
  }
  return equal && refused ? 0 : 1;
}
