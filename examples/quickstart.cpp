// Quick start: a model and its training state saved on an epoch boundary and resumed.
// Run: quickstart DIR   (prints what it saved and what it restored)
#include <ckpt/ckpt.hpp>
#include <filesystem>
#include <iostream>
#include <random>

struct Model {
  std::vector<float> weight = std::vector<float>(8, 0.0f);
  std::vector<float> bias = std::vector<float>(2, 0.0f);
};
CKPT_FIELDS(Model, weight, bias)

struct TrainState {
  Model model;
  int epoch = 0;
  double loss = 0;
  std::mt19937_64 rng{42};
};
CKPT_FIELDS(TrainState, model, epoch, loss, rng)

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "quickstart-out";
  std::filesystem::create_directories(dir);
  TrainState s;
  for (s.epoch = 1; s.epoch <= 3; ++s.epoch) {
    for (auto& w : s.model.weight) w += std::uniform_real_distribution<float>(-1, 1)(s.rng);
    s.loss = 1.0 / s.epoch;
    ckpt::save(dir / "last.ckpt", s);  // atomic: the previous file survives any failure
  }
  TrainState resumed;
  ckpt::load_into(dir / "last.ckpt", resumed);
  std::cout << "saved epoch " << s.epoch - 1 << ", resumed epoch " << resumed.epoch << " loss " << resumed.loss << "\n";
  std::cout << "weights equal: " << (resumed.model.weight == s.model.weight) << ", rng equal: " << (resumed.rng == s.rng) << "\n";
  return resumed.model.weight == s.model.weight && resumed.rng == s.rng ? 0 : 1;
}
