// Test tool for the NumPy / safetensors interop scripts: load a checkpoint of any format ckpt
// reads and save it in another, so Python can write files with its own tools and check what
// ckpt makes of them (and the reverse).
//   convert IN OUT [--format NAME] [--codec raw|zlib] [--shard BYTES] [--npy-version N] [--mmap]
// IN may be a sharded safetensors directory. Exit status 2 and the message on a ckpt::error.
#include <ckpt/ckpt.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: convert IN OUT [--format NAME] [--codec raw|zlib] [--shard BYTES] [--npy-version N] [--mmap]\n";
    return 1;
  }
  const std::filesystem::path in = argv[1], out = argv[2];
  ckpt::SaveOptions so;
  ckpt::LoadOptions lo;
  std::uint64_t shard = 0;
  int npy_version = 0;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::cerr << a << " needs a value\n"; std::exit(1); }
      return argv[++i];
    };
    if (a == "--format") so.format = next();
    else if (a == "--codec") so.codec = next();
    else if (a == "--shard") shard = std::stoull(next());
    else if (a == "--npy-version") npy_version = std::stoi(next());
    else if (a == "--mmap") lo.mmap = true;
    else { std::cerr << "unknown option " << a << "\n"; return 1; }
  }
  try {
    const ckpt::StateDict sd = std::filesystem::is_directory(in) ? ckpt::load_as<ckpt::safetensors_sharded_format>(in, lo) : ckpt::load(in, lo);
    if (shard) {
      ckpt::safetensors::save_sharded(out, sd, shard, so);
    } else if (npy_version) {
      ckpt::io::AtomicFile f(out);
      ckpt::npy::write(f.writer(), sd.tensor().view(), npy_version);
      f.commit();
    } else {
      ckpt::save(out, sd, so);
    }
    std::cout << "converted " << sd.tensor_count() << " tensors\n";
  } catch (const ckpt::error& e) {
    std::cout << e.what() << "\n";
    return 2;
  }
  return 0;
}
