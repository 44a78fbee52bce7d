// The C++ side of tests/interop/torch_interop.py:
//   torch_tool check DIR               read every DIR/NAME.pt and compare it with NAME.expected.{npz,json}
//   torch_tool resave IN OUT [VIA] [--zlib]  read IN (.pt), optionally pass it through another
//                                      format (VIA = .ckpt or .json), write OUT (.pt)
//   torch_tool write DIR               write .pt files from scratch whose contents follow fixed
//                                      formulas (torch_interop.py recomputes them)
//   torch_tool reject FILE             loading must fail with a format_error; prints its message
#include <ckpt/ckpt.hpp>

#include <cstdio>
#include <iostream>

#include "torch_expected.hpp"

namespace fs = std::filesystem;
using namespace ckpt;

namespace {
// Element i of the formula tensors: (i * 7 % 11) - 5 (unsigned: i * 7 % 11; bool: i % 2;
// complex: (v, -v)); floating values are scaled by 0.25 so they are exact in every float type.
Tensor formula(DType dt, Shape shape) {
  Tensor t(dt, std::move(shape));
  const auto n = static_cast<std::size_t>(t.numel());
  auto v = [](std::size_t i) { return static_cast<int>(i * 7 % 11) - 5; };
  for (std::size_t i = 0; i < n; ++i) {
    switch (dt) {
      case DType::f64: t.mutable_values<double>()[i] = 0.25 * v(i); break;
      case DType::f32: t.mutable_values<float>()[i] = 0.25f * static_cast<float>(v(i)); break;
      case DType::f16: t.mutable_values<float16>()[i] = float16(0.25f * static_cast<float>(v(i))); break;
      case DType::bf16: t.mutable_values<bfloat16>()[i] = bfloat16(0.25f * static_cast<float>(v(i))); break;
      case DType::i8: t.mutable_values<std::int8_t>()[i] = static_cast<std::int8_t>(v(i)); break;
      case DType::i16: t.mutable_values<std::int16_t>()[i] = static_cast<std::int16_t>(v(i) * 1000); break;
      case DType::i32: t.mutable_values<std::int32_t>()[i] = v(i) * 100000; break;
      case DType::i64: t.mutable_values<std::int64_t>()[i] = std::int64_t{v(i)} * 10000000000; break;
      case DType::u8: t.mutable_values<std::uint8_t>()[i] = static_cast<std::uint8_t>(v(i) + 5); break;
      case DType::boolean: t.mutable_values<bool>()[i] = i % 2; break;
      case DType::c64: t.mutable_values<std::complex<float>>()[i] = {0.25f * static_cast<float>(v(i)), -0.25f * static_cast<float>(v(i))}; break;
      case DType::c128: t.mutable_values<std::complex<double>>()[i] = {0.25 * v(i), -0.25 * v(i)}; break;
      default: throw std::runtime_error("no formula for " + std::string(name(dt)));
    }
  }
  return t;
}
// {"0.weight": [4, 3], "0.bias": [4], "2.weight": [2, 4], "2.bias": [2]} — nn.Sequential(Linear(3, 4), ReLU(), Linear(4, 2))
StateDict module_sd() {
  StateDict m;
  m.set("0.weight", formula(DType::f32, {4, 3}));
  m.set("0.bias", formula(DType::f32, {4}));
  m.set("2.weight", formula(DType::f32, {2, 4}));
  m.set("2.bias", formula(DType::f32, {2}));
  return m;
}

int check(const fs::path& dir) {
  int files = 0, failed = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".pt") continue;
    const auto base = (e.path().parent_path() / e.path().stem()).string();
    if (!fs::exists(base + ".expected.json")) continue;
    ++files;
    try {
      const auto diffs = torch_expected::compare(load(e.path()), base + ".expected.npz", base + ".expected.json");
      for (const auto& d : diffs) std::cout << "MISMATCH " << e.path().filename().string() << ": " << d << "\n";
      failed += !diffs.empty();
      if (diffs.empty()) std::cout << "ok " << e.path().filename().string() << "\n";
    } catch (const std::exception& x) {
      std::cout << "ERROR " << e.path().filename().string() << ": " << x.what() << "\n";
      ++failed;
    }
  }
  std::cout << "checked " << files << " files, " << failed << " failed\n";
  return failed || !files;
}

int resave(const std::vector<std::string>& a) {
  if (a.size() < 2) throw std::runtime_error("resave IN OUT [VIA] [--zlib]");
  SaveOptions o;
  std::string via;
  for (std::size_t k = 2; k < a.size(); ++k) {
    if (a[k] == "--zlib") o.codec = "zlib";
    else via = a[k];
  }
  StateDict sd = load(a[0]);
  if (!via.empty()) {
    const fs::path mid = a[1] + via;
    save(mid, sd);
    sd = load(mid);
  }
  save_as<torch_format>(a[1], sd, o);
  std::cout << "resaved " << a[1] << "\n";
  return 0;
}

int write(const fs::path& dir) {
  fs::create_directories(dir);
  StateDict d;
  for (DType t : {DType::f64, DType::f32, DType::f16, DType::bf16, DType::i8, DType::i16, DType::i32, DType::i64, DType::u8, DType::boolean, DType::c64, DType::c128})
    d.set(std::string(detail::info(t).torch), formula(t, {2, 3}));
  d.set("scalar", Tensor::scalar(1.5f));
  d.set("empty", Tensor(DType::f32, {0, 3}));
  d.set("long_row", formula(DType::f32, {1, 70}));
  save(dir / "dtypes.pt", d);

  save(dir / "module.pt", module_sd());

  StateDict seed;
  seed["epoch"] = 3;
  seed.set("model_state_dict", module_sd());
  StateDict state = StateDict::dict(Container::int_dict);
  const Shape shapes[] = {{4, 3}, {4}, {2, 4}, {2}};
  for (int i = 0; i < 4; ++i) {
    StateDict e;
    e.set("step", Tensor::scalar(2.0f));
    e.set("exp_avg", formula(DType::f32, shapes[i]));
    Tensor sq = formula(DType::f32, shapes[i]);
    for (auto& x : sq.mutable_values<float>()) x = x * x;
    e.set("exp_avg_sq", sq);
    state.set(std::to_string(i), e);
  }
  seed["optimizer_state_dict"].set("state", state);
  seed["optimizer_state_dict"].set("param_groups", Value::parse(R"([{"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08,
      "weight_decay": 0, "amsgrad": false, "maximize": false, "foreach": null, "capturable": false,
      "differentiable": false, "fused": false, "params": [0, 1, 2, 3]}])"));
  seed["loss"] = 0.12;
  save(dir / "seed.pt", seed);

  const Tensor w = formula(DType::f32, {5, 3});
  StateDict tied;
  tied.set("embed.weight", w);
  tied.set("head.weight", w);
  save(dir / "tied.pt", tied);

  SaveOptions z;
  z.codec = "zlib";
  save(dir / "zlib.pt", d, z);

  StateDict nested;
  StateDict ints = StateDict::dict(Container::int_dict);
  ints["1"] = "a";
  ints["20"] = "b";
  nested["cfg"].set("ints", ints);
  StateDict list = StateDict::dict(Container::list);
  list.set("0", formula(DType::i64, {3}));
  list.set("1", 1);
  nested.set("list", list);
  nested["values"] = Value::parse(R"({"x": [1, 2.5, null, true, "s\u00e9"], "big": 18446744073709551615})");
  save(dir / "nested.pt", nested);
  std::cout << "wrote " << dir.string() << "\n";
  return 0;
}

int reject(const fs::path& f) {
  try {
    (void)load(f);
  } catch (const format_error& e) {
    std::cout << "rejected: " << e.what() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cout << "wrong error: " << e.what() << "\n";
    return 1;
  }
  std::cout << "loaded a file that should have been rejected\n";
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() >= 2 && a[0] == "check") return check(a[1]);
    if (a.size() >= 3 && a[0] == "resave") return resave({a.begin() + 1, a.end()});
    if (a.size() >= 2 && a[0] == "write") return write(a[1]);
    if (a.size() >= 2 && a[0] == "reject") return reject(a[1]);
    std::cerr << "usage: torch_tool check DIR | resave IN OUT [VIA] [--zlib] | write DIR | reject FILE\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
