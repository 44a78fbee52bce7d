// Writes the fuzzers' seed corpora with our own writers: a few small checkpoints per format
// (every dtype, 0-d and empty tensors, nested trees, both native codecs); for the zip fuzzer the
// .npz and .pt seeds and a zip64 archive, for the pickle fuzzer each .pt seed's data.pkl, for the
// distributed metadata fuzzer the metadata.json of a few distributed checkpoints. Run
// once by hand:
//   make_corpus tests/fuzz/corpus
//   /usr/bin/python3 tests/fuzz/pickle_seeds.py tests/fuzz/corpus   # pickles and .pt by Python
// and commit the output; ctest's fuzz runs start from it.
#include <ckpt/ckpt.hpp>
#include <ckpt/dist.hpp>
#include <ckpt/io/memory.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace {
void write(const std::filesystem::path& p, std::span<const std::byte> b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus DIR\n";
    return 2;
  }
  const std::filesystem::path out = argv[1];
  std::vector<ckpt::StateDict> seeds(3);
  seeds[0]["w"] = ckpt::Tensor::from<float>({1, 2, 3, 4}, {2, 2});
  seeds[0]["b"] = ckpt::Tensor::from<float>({0.5f});
  for (ckpt::DType t : ckpt::all_dtypes) {
    seeds[1]["scalar"].set(std::string(ckpt::name(t)), ckpt::Tensor(t, {}));
    seeds[1]["vec"].set(std::string(ckpt::name(t)), ckpt::Tensor(t, {3}));
  }
  seeds[1]["empty"] = ckpt::Tensor(ckpt::DType::i64, {0, 4});
  seeds[2]["model"].set("0.weight", ckpt::Tensor::from<double>({1, -1, 2, -2, 3, -3}, {3, 2}));
  seeds[2]["optimizer"]["state"] = ckpt::StateDict::dict(ckpt::Container::int_dict);
  seeds[2]["optimizer"]["state"]["0"]["step"] = ckpt::Tensor::scalar(3.0f);
  seeds[2]["optimizer"]["param_groups"] = ckpt::Value::parse(R"([{"lr": 0.01, "betas": [0.9, 0.999], "params": [0]}])");
  seeds[2]["epoch"] = 4;
  seeds.emplace_back(ckpt::Tensor::from<std::int32_t>({1, 2, 3, 4, 5, 6}, {2, 3}));  // a lone tensor (.npy)
  ckpt::detail::for_each_format([&]<class F>(F) {
    if constexpr (ckpt::archive_traits<F>::caps.directory) {
      return;  // fuzzers read single files
    } else {
    const std::string name(ckpt::archive_traits<F>::name);
    const auto dir = out / name;
    std::filesystem::create_directories(dir);
    for (std::size_t i = 0; i < seeds.size(); ++i) {
      for (const char* codec : {"raw", "zlib"}) {
        if (std::string(codec) == "zlib" && name != "native") continue;
        ckpt::SaveOptions o;
        o.codec = codec;
        o.fsync = false;
        const auto p = dir / ("seed" + std::to_string(i) + "-" + codec + std::string(ckpt::archive_traits<F>::extensions[0]));
        try {
          ckpt::save_as<F>(p, seeds[i], o);
        } catch (const ckpt::error& e) {  // e.g. a dtype or a tree the format cannot hold
          std::cerr << name << ": seed " << i << " skipped: " << e.what() << "\n";
        }
      }
    }
    std::cout << "wrote " << dir.string() << "\n";
    }
  });
  // zip: our archives as they are, and one with zip64 records, deflated and aligned members.
  namespace fs = std::filesystem;
  fs::create_directories(out / "zip");
  fs::create_directories(out / "pickle");
  for (const char* fmt : {"npz", "pt"})
    for (const auto& e : fs::directory_iterator(out / fmt))
      if (e.path().filename().string().starts_with("seed")) fs::copy_file(e.path(), out / "zip" / e.path().filename(), fs::copy_options::overwrite_existing);
  {
    ckpt::io::MemoryWriter mw;
    ckpt::detail::zip::Writer z(mw);
    z.force_zip64();
    const std::string text = "hello, hello, hello, hello";
    z.add("a/stored", std::as_bytes(std::span(text)));
    z.add("a/deflated", std::as_bytes(std::span(text)), true);
    z.add("a/aligned", std::as_bytes(std::span(text)), false, 64);
    z.finish();
    write(out / "zip" / "seed-zip64.zip", mw.bytes());
  }
  // pickle: the data.pkl of each .pt seed.
  for (const auto& e : fs::directory_iterator(out / "pt")) {
    if (!e.path().filename().string().starts_with("seed")) continue;
    ckpt::detail::zip::Reader r(e.path());
    for (const auto& m : r.entries())
      if (m.name.ends_with("/data.pkl")) write(out / "pickle" / (e.path().stem().string() + ".pkl"), r.read(m));
  }
  std::cout << "wrote " << (out / "zip").string() << " and " << (out / "pickle").string() << "\n";

  // dist_metadata: distributed checkpoints saved by one process holding every chunk — rows and
  // columns, an uneven 3-D grid, 0-d and empty tensors, replicated tensors and values.
  using ckpt::dist::Box;
  using ckpt::dist::ShardedTensor;
  std::vector<ckpt::StateDict> dist(2);
  {
    ShardedTensor w(ckpt::DType::f32, {4, 3}), c(ckpt::DType::f64, {2, 5});
    for (int r = 0; r < 2; ++r) {
      const Box a = ckpt::dist::split_box(w.global_shape(), 0, r, 2), b = ckpt::dist::split_box(c.global_shape(), 1, r, 2);
      w.add_chunk({a.offsets, ckpt::Tensor(ckpt::DType::f32, a.shape)});
      c.add_chunk({b.offsets, ckpt::Tensor(ckpt::DType::f64, b.shape)});
    }
    dist[0]["w"] = w.state_dict();
    dist[0]["opt"]["c"] = c.state_dict();
    dist[0]["b"] = ckpt::Tensor::from<float>({1, 2, 3});
    dist[0]["epoch"] = 2;
  }
  {
    ShardedTensor u(ckpt::DType::i32, {5, 3, 2}), s(ckpt::DType::bf16, {}), e(ckpt::DType::u8, {0, 4});
    const std::int64_t rows[] = {0, 1, 5};
    for (int a = 0; a < 2; ++a)
      for (std::int64_t k = 0; k < 2; ++k) u.add_chunk({{rows[a], 0, k}, ckpt::Tensor(ckpt::DType::i32, {rows[a + 1] - rows[a], 3, 1})});
    s.add_chunk({{}, ckpt::Tensor(ckpt::DType::bf16, {})});
    e.add_chunk({{0, 0}, ckpt::Tensor(ckpt::DType::u8, {0, 4})});
    dist[1]["u"] = u.state_dict();
    dist[1]["s"] = s.state_dict();
    dist[1]["e"] = e.state_dict();
    dist[1]["r0"] = ckpt::Tensor::scalar(1.5);
  }
  fs::create_directories(out / "dist_metadata");
  const auto tmp = fs::temp_directory_path() / ("ckpt-make-corpus-" + ckpt::io::random_suffix());
  ckpt::dist::SingleProcess one;
  for (std::size_t i = 0; i < dist.size(); ++i) {
    ckpt::dist::save(one, tmp, dist[i], {.fsync = false, .crc_block_bytes = 16});
    fs::copy_file(tmp / ckpt::dist::metadata_name, out / "dist_metadata" / ("seed" + std::to_string(i) + ".json"), fs::copy_options::overwrite_existing);
  }
  fs::remove_all(tmp);
  std::cout << "wrote " << (out / "dist_metadata").string() << "\n";
}
