// ODR check, first translation unit: the whole library included in two TUs must link.
#include <ckpt/ckpt.hpp>
#include <ckpt/dist.hpp>  // the distributed layer too (it needs no MPI)
#include <iostream>

ckpt::StateDict make_in_tu2();
int main() {
  ckpt::StateDict a;
  a["x"] = ckpt::Tensor::from<float>({1, 2});
  const bool ok = make_in_tu2() == a;
  std::cout << (ok ? "odr ok" : "odr MISMATCH") << "\n";
  return ok ? 0 : 1;
}
