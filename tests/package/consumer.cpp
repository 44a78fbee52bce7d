// The package consumers' program: save and load through the installed/added library.
#include <ckpt/ckpt.hpp>
#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
  ckpt::StateDict sd;
  sd["w"] = ckpt::Tensor::from<float>({1, 2, 3});
  sd["epoch"] = 2;
  ckpt::save(dir / "consumer.ckpt", sd);
  const bool ok = ckpt::load(dir / "consumer.ckpt") == sd;
  std::cout << (ok ? "consumer ok" : "consumer FAILED") << "\n";
  return ok ? 0 : 1;
}
