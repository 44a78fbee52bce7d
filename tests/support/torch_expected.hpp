// Test oracle for .pt files: compares a StateDict with the values another program says are in
// the file — NAME.expected.npz (each tensor's elements, keyed by its dotted path; bfloat16 as
// uint16 bits under KEY@bf16, float8 as uint8 bits under KEY@float8_e4m3fn / KEY@float8_e5m2)
// and NAME.expected.json ({"tensors": {path: {dtype, shape}}, "values": {path: value},
// "top_level_type"}), the layout of ../shared/fixtures (see its README) and of the files
// tests/interop/torch_interop.py writes. The .npy parsing here is deliberately independent of
// ckpt's own NumPy code, so it can serve as an oracle.
#pragma once

#include <ckpt/ckpt.hpp>
#include <ckpt/detail/zip.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace torch_expected {
namespace fs = std::filesystem;

struct Npy {
  std::string descr;
  ckpt::Shape shape;
  std::vector<std::byte> data;
};

/// One .npy (version 1.0-3.0, C order) from its bytes; throws std::runtime_error when odd.
inline Npy parse_npy(const std::vector<std::byte>& b, const std::string& name) {
  auto fail = [&](const std::string& why) { throw std::runtime_error("expected npy '" + name + "': " + why); };
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) fail("bad magic");
  const int major = static_cast<int>(b[6]);
  std::size_t hlen, start;
  if (major == 1) {
    hlen = static_cast<std::size_t>(b[8]) | static_cast<std::size_t>(b[9]) << 8;
    start = 10;
  } else {
    std::uint32_t v;
    std::memcpy(&v, b.data() + 8, 4);
    hlen = v;
    start = 12;
  }
  if (start + hlen > b.size()) fail("header past the end");
  const std::string h(reinterpret_cast<const char*>(b.data()) + start, hlen);
  Npy n;
  const auto d = h.find("'descr': '");
  if (d == std::string::npos) fail("no descr");
  n.descr = h.substr(d + 10, h.find('\'', d + 10) - d - 10);
  if (h.find("'fortran_order': False") == std::string::npos) fail("Fortran order");
  const auto s = h.find("'shape': (");
  if (s == std::string::npos) fail("no shape");
  std::string dims = h.substr(s + 10, h.find(')', s) - s - 10);
  for (std::size_t pos = 0; pos < dims.size();) {
    const auto comma = dims.find(',', pos);
    const std::string tok = dims.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (tok.find_first_of("0123456789") != std::string::npos) n.shape.push_back(std::stoll(tok));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  n.data.assign(b.begin() + static_cast<std::ptrdiff_t>(start + hlen), b.end());
  return n;
}

/// Every member of an .npz, by name without ".npy".
inline std::map<std::string, Npy> read_npz(const fs::path& p) {
  ckpt::detail::zip::Reader z(p);
  std::map<std::string, Npy> out;
  for (const auto& e : z.entries()) {
    std::string name = e.name;
    if (name.size() > 4 && name.ends_with(".npy")) name.resize(name.size() - 4);
    out.emplace(name, parse_npy(z.read(e), e.name));
  }
  return out;
}

/// Leaves of `v` under `prefix`, descending into JSON arrays (by index) and objects (by key).
inline void flatten_value(const ckpt::Value& v, const std::string& prefix, std::map<std::string, ckpt::Value>& out) {
  if (v.is_array() && !v.empty()) {
    for (std::size_t i = 0; i < v.size(); ++i) flatten_value(v[i], prefix + "." + std::to_string(i), out);
  } else if (v.is_object()) {  // an empty dict has no leaves (as an empty dict node)
    for (const auto& [k, x] : v.items()) flatten_value(x, prefix + "." + k, out);
  } else {
    out[prefix] = v;
  }
}

/// Every difference between `sd` and the expected files, as readable lines (empty when equal).
inline std::vector<std::string> compare(const ckpt::StateDict& sd, const fs::path& npz, const fs::path& json_path) {
  std::vector<std::string> bad;
  std::ifstream jf(json_path);
  const ckpt::Value want = ckpt::Value::parse(jf);
  std::map<std::string, ckpt::Tensor> tensors;
  std::map<std::string, ckpt::Value> values;
  for (const auto& [p, leaf] : sd.flatten()) {
    if (leaf->is_tensor()) tensors.emplace(p.joined(), leaf->tensor());
    else flatten_value(leaf->value(), p.joined(), values);
  }
  const auto arrays = read_npz(npz);
  for (const auto& [key, spec] : want.at("tensors").items()) {
    auto it = tensors.find(key);
    if (it == tensors.end()) {
      bad.push_back("missing tensor " + key);
      continue;
    }
    const ckpt::Tensor& t = it->second;
    const std::string torch_name(ckpt::detail::info(t.dtype()).torch);
    if (torch_name != spec.at("dtype").get<std::string>()) bad.push_back(key + ": dtype " + torch_name + ", expected " + spec.at("dtype").get<std::string>());
    if (t.shape() != spec.at("shape").get<ckpt::Shape>()) bad.push_back(key + ": shape " + ckpt::shape_string(t.shape()) + ", expected " + spec.at("shape").dump());
    const Npy* a = nullptr;
    for (const char* suffix : {"", "@bf16", "@float8_e4m3fn", "@float8_e5m2"})
      if (auto f = arrays.find(key + suffix); f != arrays.end()) a = &f->second;
    if (!a) {
      bad.push_back(key + ": no expected values in " + npz.filename().string());
      continue;
    }
    if (a->data.size() != t.nbytes() || (t.nbytes() && std::memcmp(a->data.data(), t.data(), t.nbytes()) != 0))
      bad.push_back(key + ": values differ from " + npz.filename().string() + " (" + std::to_string(a->data.size()) + " expected bytes, " + std::to_string(t.nbytes()) + " read)");
  }
  for (const auto& [key, t] : tensors)
    if (!want.at("tensors").contains(key)) bad.push_back("unexpected tensor " + key);
  const ckpt::Value& wv = want.contains("values") ? want.at("values") : ckpt::Value::object();
  for (const auto& [key, v] : wv.items()) {
    auto it = values.find(key);
    if (it == values.end()) bad.push_back("missing value " + key + " = " + v.dump());
    else if (it->second != v) bad.push_back(key + ": value " + it->second.dump() + ", expected " + v.dump());
  }
  for (const auto& [key, v] : values)
    if (!wv.contains(key)) bad.push_back("unexpected value " + key + " = " + v.dump());
  if (want.contains("top_level_type") && want["top_level_type"].is_string()) {
    const auto top = want["top_level_type"].get<std::string>();
    if ((top == "dict" || top == "OrderedDict") && !sd.is_dict()) bad.push_back("top level is not a dict");
    if (top == "list" && !(sd.is_dict() && sd.container() == ckpt::Container::list)) bad.push_back("top level is not a list");
  }
  return bad;
}

}  // namespace torch_expected
