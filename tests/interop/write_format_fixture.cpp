// Writes a .ckpt (raw and zlib codecs) plus a JSON file of the values every tensor holds, for
// the pure-Python reader of docs/FORMAT.md to check against.
#include <ckpt/ckpt.hpp>
#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  ckpt::StateDict sd;
  sd["model"].set("0.weight", ckpt::Tensor::from<float>({1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, 7.0f}, {2, 3}));
  sd["model"].set("0.bias", ckpt::Tensor::from<double>({0.1, -0.2}));
  sd["optimizer"]["state"] = ckpt::StateDict::dict(ckpt::Container::int_dict);
  sd["optimizer"]["state"]["0"]["step"] = ckpt::Tensor::scalar<std::int64_t>(12);
  sd["optimizer"]["lr"] = 0.001;
  sd["counts"] = ckpt::Tensor::from<std::int32_t>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  sd["mask"] = ckpt::Tensor::from<bool>({true, false, true});
  sd["epoch"] = 3;
  sd["name"] = "demo";
  ckpt::save(dir / "raw.ckpt", sd);
  ckpt::SaveOptions z;
  z.codec = "zlib";
  z.compression_level = 9;
  ckpt::Tensor zeros(ckpt::DType::f32, {4096});
  sd["zeros"] = zeros;  // compresses, so the zlib path is exercised
  ckpt::save(dir / "zlib.ckpt", sd, z);

  ckpt::Value expected = ckpt::Value::object();
  for (const auto& [path, leaf] : sd.flatten()) {
    if (leaf->is_tensor()) {
      const auto& t = leaf->tensor();
      ckpt::Value vals = ckpt::Value::array();
      switch (t.dtype()) {
        case ckpt::DType::f32: for (float v : t.values<float>()) vals.push_back(v); break;
        case ckpt::DType::f64: for (double v : t.values<double>()) vals.push_back(v); break;
        case ckpt::DType::i32: for (auto v : t.values<std::int32_t>()) vals.push_back(v); break;
        case ckpt::DType::i64: for (auto v : t.values<std::int64_t>()) vals.push_back(v); break;
        case ckpt::DType::boolean: for (bool v : t.values<bool>()) vals.push_back(v); break;
        default: return 3;
      }
      expected[path.joined()] = {{"dtype", ckpt::name(t.dtype())}, {"shape", t.shape()}, {"values", vals}};
    } else {
      expected[path.joined()] = {{"value", leaf->value()}};
    }
  }
  std::ofstream(dir / "expected.json") << expected.dump(1);
  std::cout << "wrote " << dir.string() << "\n";
}
