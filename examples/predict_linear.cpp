// predict_linear BUNDLE — loads an inference bundle written by `train_linear --export` (weights
// plus the model config as metadata) without any training code, and prints predictions for
// the same probe inputs the trainer prints.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "linear_adam.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: predict_linear BUNDLE\n";
    return 2;
  }
  try {
    const ckpt::StateDict bundle = ckpt::load(argv[1]);
    const ckpt::Value& cfg = bundle.at("config").value();
    if (cfg.at("dtype") != "f32") throw ckpt::unsupported_error("bundle dtype " + cfg.at("dtype").dump(), argv[1]);
    linear_adam::Linear model(cfg.at("in_features").get<std::int64_t>(), cfg.at("out_features").get<std::int64_t>());
    ckpt::StateDict weights;
    weights.set("weight", bundle.at("weight"));
    weights.set("bias", bundle.at("bias"));
    ckpt::load_state_dict(model, weights);
    std::printf("loaded %s: Linear(%lld -> %lld)\n", argv[1], static_cast<long long>(model.in_features()), static_cast<long long>(model.out_features()));
    for (std::int64_t r = 0; r < 3; ++r) {
      const auto x = linear_adam::probe_input(r, model.in_features());
      std::vector<float> y(static_cast<std::size_t>(model.out_features()));
      model.forward(x.data(), y.data());
      std::printf("prediction %d: %.9g\n", static_cast<int>(r), y[0]);
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
