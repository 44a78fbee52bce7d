// Real torch.save files from ../shared/fixtures (torch 2.x zip files of both generations and
// pre-1.6 legacy files), each compared with the values torch itself reads from it
// (NAME.expected.npz / NAME.expected.json), then written back by ckpt and read again; and
// torch26/ — torch 2.6 + NumPy 2 files holding Python objects (issue 16) — read with and
// without LoadOptions::inert_objects, every tensor compared with the expected values.
// Registered only when the fixtures folder exists (tests/torch.cmake).
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>

#include <cstring>
#include <fstream>
#include <map>

#include "test_util.hpp"
#include "torch_expected.hpp"

#ifndef CKPT_FIXTURES_DIR
#error "CKPT_FIXTURES_DIR must name ../shared/fixtures"
#endif

using namespace ckpt;
namespace fs = std::filesystem;

namespace {
std::vector<fs::path> pt_files(const char* sub) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(fs::path(CKPT_FIXTURES_DIR) / sub))
    if (e.path().extension() == ".pt" && e.path().stem() != "broken") v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}
void check_dir(const char* sub, bool legacy, std::size_t at_least) {
  ckpt_test::TempDir dir;
  const auto files = pt_files(sub);
  CHECK(files.size() >= at_least);
  for (const auto& f : files) {
    INFO(f.string());
    CHECK(sniff_format(f) == "pt");
    torchfmt::InputArchive ar(f);
    CHECK(ar.legacy() == legacy);
    const StateDict sd = load(f);
    const auto base = f.parent_path() / f.stem();
    const auto diffs = torch_expected::compare(sd, base.string() + ".expected.npz", base.string() + ".expected.json");
    for (const auto& d : diffs) FAIL_CHECK(d);
    CHECK(diffs.empty());
    // and what ckpt writes from it reads back the same
    const auto out = dir / f.filename().string();
    save(out, sd);
    CHECK(load(out) == sd);
  }
}
}  // namespace

TEST_CASE("fixtures: torch 2.x files read as torch reads them", "[formats][torch][fixtures]") {
  check_dir("torch2", false, 30);
}

TEST_CASE("fixtures: legacy (pre-1.6) torch files read as torch reads them", "[formats][torch][fixtures]") {
  check_dir("torch-legacy", true, 4);
  const auto broken = fs::path(CKPT_FIXTURES_DIR) / "torch-legacy" / "broken.pt";
  CHECK_THROWS_AS(load(broken), format_error);
  CHECK_THROWS_AS(load_as<torch_format>(broken), format_error);
}

namespace {
// The state_dict() name of a tensor in a whole pickled module read as records:
// $state._modules.0.$state._parameters.weight -> 0.weight.
std::string state_dict_name(const KeyPath& p) {
  std::string joined;
  const auto& k = p.keys();
  for (std::size_t i = 0; i < k.size(); ++i) {
    if (k[i] == "$state" || (i > 0 && k[i - 1] == "$state" && (k[i] == "_modules" || k[i] == "_parameters" || k[i] == "_buffers"))) continue;
    joined += (joined.empty() ? "" : ".") + k[i];
  }
  return joined;
}
}  // namespace

TEST_CASE("fixtures: torch 2.6 files with NumPy 2 values, a Namespace, a whole module, sets and bytes", "[formats][torch][fixtures]") {
  const fs::path dir = fs::path(CKPT_FIXTURES_DIR) / "torch26";
  if (!fs::exists(dir)) return;  // an older fixtures folder
  LoadOptions inert;
  inert.inert_objects = true;
  ckpt_test::TempDir tmp;
  std::size_t files = 0;
  for (const auto& f : pt_files("torch26")) {
    INFO(f.string());
    ++files;
    const std::string name = f.stem().string();
    const bool objects = name == "reference_args" || name == "whole_module";  // beyond NumPy values, sets and bytes
    if (objects) CHECK_THROWS_WITH(load(f), ckpt_test::Contains("--inert-objects"));
    StateDict sd = load(f, objects ? inert : LoadOptions{});
    CHECK(load(f, inert) == sd);  // the option changes nothing where it is not needed
    // every tensor torch's own reader saw, bit for bit (and no other)
    const auto base = f.parent_path() / f.stem();
    std::ifstream jf(base.string() + ".expected.json");
    const Value want = Value::parse(jf);
    const auto npz = torch_expected::read_npz(base.string() + ".expected.npz");
    std::map<std::string, Tensor> tensors;
    for (const auto& [p, leaf] : sd.flatten())
      if (leaf->is_tensor()) tensors[state_dict_name(p)] = leaf->tensor();
    CHECK(tensors.size() == want.at("tensors").size());
    for (const auto& [key, spec] : want.at("tensors").items()) {
      INFO(key);
      REQUIRE(tensors.count(key));
      const Tensor& t = tensors[key];
      CHECK(detail::info(t.dtype()).torch == spec.at("dtype").get<std::string>());
      CHECK(t.shape() == spec.at("shape").get<Shape>());
      REQUIRE(npz.count(key));
      const auto& a = npz.at(key);
      REQUIRE(a.data.size() == t.nbytes());
      CHECK(std::memcmp(a.data.data(), t.data(), t.nbytes()) == 0);
    }
    // the values the fixture README names
    if (name == "numpy_values") {
      CHECK(sd["best_acc"].value() == 0.71);
      CHECK(sd["steps"].value() == 1234);
      CHECK(sd["flag"].value() == true);
    } else if (name == "reference_args") {
      CHECK(sd["args"].value().at("$class") == "argparse.Namespace");
      CHECK(sd["args"].value().at("$state").is_object());
    } else if (name == "whole_module") {
      CHECK(sd["$class"].value() == "torch.nn.modules.container.Sequential");
    } else if (name == "sets_bytes") {
      CHECK(sd["tags"].value().at("$class") == "builtins.set");
      CHECK(sd["frozen"].value().at("$class") == "builtins.frozenset");
      CHECK(sd["raw"].value().at("$class") == "builtins.bytes");
      CHECK(sd["ba"].value().at("$class") == "builtins.bytearray");
      CHECK(sd["c"].value() == Value::parse(R"({"$class": "builtins.complex", "$args": [1.0, 2.0]})"));
      CHECK(sd["t"].value() == Value::parse(R"([1, "x"])"));
    }
    // written back (to .pt, and through safetensors) and read again: the same tree
    for (const char* ext : {".pt", ".safetensors"}) {
      const auto out = tmp / (name + ext);
      save(out, sd);
      CHECK(load(out, inert) == sd);
    }
  }
  CHECK(files == 4);
}
