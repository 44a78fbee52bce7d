// Adding a backend from outside the library: rawdir.hpp writes a directory holding one raw
// file per tensor plus index.json (two archive classes and an archive_traits specialization),
// and ckpt::save_as / load_as / the manager's machinery work with it unchanged.
#include <filesystem>
#include <iostream>

#include "rawdir.hpp"

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : ".";
  ckpt::StateDict sd;
  sd["model"].set("0.weight", ckpt::Tensor::from<float>({1, 2, 3, 4}, {2, 2}));
  sd["model"].set("0.bias", ckpt::Tensor::from<float>({0.5f, -0.5f}));
  sd["epoch"] = 4;
  ckpt::save_as<rawdir::format>(dir / "run.rawdir", sd);
  ckpt::save_as<rawdir::format>(dir / "run.rawdir", sd);  // replacing an existing one is atomic too
  ckpt::StateDict back = ckpt::load_as<rawdir::format>(dir / "run.rawdir");
  std::size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir / "run.rawdir")) files += e.is_regular_file();
  std::cout << "rawdir: " << files << " files, round trip " << (back == sd ? "exact" : "DIFFERS") << "\n";
  return back == sd ? 0 : 1;
}
