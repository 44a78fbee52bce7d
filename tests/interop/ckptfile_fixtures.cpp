// Fixtures and oracle for tools/python/ckptfile.py (tests/interop/ckptfile_read.py, _hostile.py):
//   ckptfile_fixtures write DIR          .ckpt files with every dtype (raw and zlib), 0-d and empty
//                                        tensors, dotted keys, nested dicts, containers, JSON values
//   ckptfile_fixtures describe FILE OUT  the library's own reading of FILE (eager, checksums
//                                        verified) as JSON: the tree with containers and order,
//                                        each tensor's dtype, shape, bytes (hex) and values as
//                                        C++ converts them; on a ckpt::error prints it, exits 3.
#include <ckpt/ckpt.hpp>
#include <cmath>
#include <complex>
#include <fstream>
#include <iostream>

namespace {

// Bytes j of a tensor: a fixed pseudo-random pattern (every bit pattern a float can have: NaN,
// infinities, subnormals); bools stay 0/1. `period` > 0 repeats the first `period` elements.
ckpt::Tensor patterned(ckpt::DType dt, ckpt::Shape shape, unsigned seed, std::size_t period = 0) {
  ckpt::Tensor t(dt, std::move(shape));
  const std::size_t es = ckpt::element_size(dt);
  std::byte* p = t.mutable_data();
  for (std::size_t j = 0; j < t.nbytes(); ++j) {
    const std::size_t src = period ? (j / es) % period * es + j % es : j;
    const auto x = static_cast<unsigned>(src * 2654435761u + seed * 40503u) >> 13;
    p[j] = static_cast<std::byte>(dt == ckpt::DType::boolean ? x & 1u : x & 0xffu);
  }
  return t;
}

ckpt::StateDict fixture() {
  using ckpt::StateDict;
  StateDict sd;
  unsigned seed = 1;
  for (ckpt::DType dt : ckpt::all_dtypes) {
    const std::string n(ckpt::name(dt));
    sd["dtypes"].set(n, patterned(dt, {3, 5}, seed++));           // mostly incompressible: raw
    sd["repeat"].set(n, patterned(dt, {4, 64}, seed++, 3));        // compresses: zlib
    sd["scalars"].set(n, patterned(dt, {}, seed++));               // 0-d
    sd["empty"].set(n, ckpt::Tensor(dt, {2, 0, 3}));               // no bytes
  }
  sd["empty"].set("f32.flat", ckpt::Tensor(ckpt::DType::f32, {0}));
  sd["model"].set("0.weight", patterned(ckpt::DType::f32, {2, 3}, 90));
  sd["model"].set("0.bias", patterned(ckpt::DType::f32, {2}, 91));
  sd["model"].set("a\\b.c", ckpt::Tensor::from<std::int32_t>({1, -2, 3}));
  sd["model"].set("\xc3\xa4.\xc3\xbc", ckpt::Tensor::from<double>({0.5, std::nan(""), -INFINITY}));
  sd["model"]["encoder"]["layers"] = StateDict::dict(ckpt::Container::list);
  sd["model"]["encoder"]["layers"].set("0", patterned(ckpt::DType::bf16, {4}, 92));
  sd["model"]["encoder"]["layers"].set("1", patterned(ckpt::DType::bf16, {4}, 93));
  sd["optimizer"]["state"] = StateDict::dict(ckpt::Container::int_dict);
  sd["optimizer"]["state"]["0"]["step"] = ckpt::Tensor::scalar<std::int64_t>(12);
  sd["optimizer"]["state"]["0"]["exp_avg"] = patterned(ckpt::DType::f32, {2, 3}, 94);
  sd["optimizer"]["state"]["1"]["step"] = ckpt::Tensor::scalar<double>(std::nan(""));
  sd["optimizer"]["param_groups"]["0"]["lr"] = 0.001;
  sd["optimizer"]["param_groups"]["0"]["params"] = ckpt::Value::array({0, 1});
  sd["epoch"] = 3;
  sd["step"] = ckpt::Value(std::uint64_t{18446744073709551615u});
  sd["delta"] = -7;
  sd["ratio"] = 2.5;
  sd["whole_float"] = 4.0;
  sd["done"] = false;
  sd["nothing"] = ckpt::Value(nullptr);
  sd["name"] = "r\xc3\xa9sum\xc3\xa9 \"quoted\" \\ tab\t";
  sd["config"] = ckpt::Value::parse(R"({"layers": [64, 32], "act": {"kind": "gelu", "approx": true}, "x": [[1.5], [], {}]})");
  sd["empty_dict"] = StateDict::dict();
  sd["empty_list"] = StateDict::dict(ckpt::Container::list);
  return sd;
}

ckpt::StateDict small() {  // the corruption test's small checkpoint, plus a value and a 0-d tensor
  ckpt::StateDict sd;
  sd["model"].set("0.weight", ckpt::Tensor::from<float>({1.5f, -2.0f, 3.25f, 0.5f, 8.0f, -1.0f}, {2, 3}));
  sd["model"].set("0.bias", ckpt::Tensor::from<float>({0.25f, -0.75f}));
  sd["steps"] = ckpt::Tensor::from<std::int64_t>({7, 9, 7, 9, 7, 9, 7, 9, 7, 9, 7, 9, 7, 9, 7, 9});
  sd["loss"] = ckpt::Tensor::scalar<double>(0.125);
  sd["epoch"] = 3;
  return sd;
}

// A float as JSON; NaN and infinities, which JSON lacks, as strings.
ckpt::Value real(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return d;
}

template <class T>
void append_values(const ckpt::Tensor& t, ckpt::Value& out) {
  for (const T& v : t.values<T>()) {
    if constexpr (std::is_same_v<T, std::complex<float>> || std::is_same_v<T, std::complex<double>>)
      out.push_back(ckpt::Value::array({real(v.real()), real(v.imag())}));
    else if constexpr (std::is_same_v<T, bool> || std::is_integral_v<T>)
      out.push_back(v);
    else
      out.push_back(real(static_cast<double>(static_cast<float>(v))));
  }
}
template <>
void append_values<double>(const ckpt::Tensor& t, ckpt::Value& out) {
  for (double v : t.values<double>()) out.push_back(real(v));
}

ckpt::Value describe_tensor(const ckpt::Tensor& t) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string bytes;
  for (std::byte b : t.bytes()) {
    bytes += hex[std::to_integer<unsigned>(b) >> 4];
    bytes += hex[std::to_integer<unsigned>(b) & 15u];
  }
  ckpt::Value values = ckpt::Value::array();
  using D = ckpt::DType;
  switch (t.dtype()) {
    case D::f64: append_values<double>(t, values); break;
    case D::f32: append_values<float>(t, values); break;
    case D::f16: append_values<ckpt::float16>(t, values); break;
    case D::bf16: append_values<ckpt::bfloat16>(t, values); break;
    case D::f8_e4m3: append_values<ckpt::float8_e4m3>(t, values); break;
    case D::f8_e5m2: append_values<ckpt::float8_e5m2>(t, values); break;
    case D::i8: append_values<std::int8_t>(t, values); break;
    case D::i16: append_values<std::int16_t>(t, values); break;
    case D::i32: append_values<std::int32_t>(t, values); break;
    case D::i64: append_values<std::int64_t>(t, values); break;
    case D::u8: append_values<std::uint8_t>(t, values); break;
    case D::u16: append_values<std::uint16_t>(t, values); break;
    case D::u32: append_values<std::uint32_t>(t, values); break;
    case D::u64: append_values<std::uint64_t>(t, values); break;
    case D::boolean: append_values<bool>(t, values); break;
    case D::c64: append_values<std::complex<float>>(t, values); break;
    case D::c128: append_values<std::complex<double>>(t, values); break;
  }
  return {{"dtype", ckpt::name(t.dtype())}, {"shape", t.shape()}, {"hex", bytes}, {"values", values}};
}

ckpt::Value describe(const ckpt::StateDict& n) {
  switch (n.kind()) {
    case ckpt::StateDict::Kind::tensor: return {{"tensor", describe_tensor(n.tensor())}};
    case ckpt::StateDict::Kind::value: return {{"value", n.value()}};
    case ckpt::StateDict::Kind::dict: break;
  }
  ckpt::Value items = ckpt::Value::array();
  for (const auto& it : n.items()) items.push_back(ckpt::Value::array({it.key, describe(it.value)}));
  return {{"container", ckpt::container_name(n.container())}, {"dict", items}};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "write" && argc == 3) {
    const std::filesystem::path dir = argv[2];
    std::filesystem::create_directories(dir);
    ckpt::SaveOptions z;
    z.codec = "zlib";
    ckpt::save(dir / "all.ckpt", fixture());
    ckpt::save(dir / "all_zlib.ckpt", fixture(), z);
    ckpt::save(dir / "run.ckpt", small());
    ckpt::save(dir / "run_zlib.ckpt", small(), z);
    std::cout << "wrote " << dir.string() << "\n";
    return 0;
  }
  if (mode == "describe" && argc == 4) {
    try {
      std::ofstream(argv[3]) << describe(ckpt::load(argv[2])).dump(1);
    } catch (const ckpt::error& e) {
      std::cout << "error: " << e.what() << "\n";
      return 3;
    }
    return 0;
  }
  std::cerr << "usage: ckptfile_fixtures write DIR | describe FILE OUT.json\n";
  return 2;
}
