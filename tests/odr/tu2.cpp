// ODR check, second translation unit.
#include <ckpt/ckpt.hpp>
#include <ckpt/dist.hpp>  // the distributed layer too (it needs no MPI)

ckpt::StateDict make_in_tu2() {
  ckpt::StateDict a;
  a["x"] = ckpt::Tensor::from<float>({1, 2});
  return a;
}
