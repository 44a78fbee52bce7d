// The ckpt tool on checkpoints written by other programs (../shared/fixtures, see its README):
// for every fixture whose format this build knows, `ls --json` lists exactly the tensors the
// writer's own reader saw (key, dtype, shape), `verify` passes, `stats` counts the NaNs the
// expected values hold, and `convert` to .ckpt gives a file that `diff` finds equal. Fixtures
// of formats this build does not know are refused with exit 2 and one line. torch26/ (Python
// objects and NumPy values, issue 16) must load: NumPy values and sets/bytes by default, whole
// modules and Namespaces with --inert-objects (and without it exit 2 naming the global and the
// flag); its whole module's tensors are matched to the state_dict() keys of the expected files.
#include "ckpt_catch.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "tool_fixtures.hpp"
#include "tool_runner.hpp"

using namespace tool_test;
using nlohmann::json;

namespace {

const fs::path fixtures = CKPT_SHARED_FIXTURES;

json read_json(const fs::path& p) {
  std::ifstream f(p);
  return json::parse(f);
}

/// Known extensions and whether some backend reads directories, from `ckpt formats --json`.
struct Known {
  std::set<std::string> extensions;
  bool directories = false;
  Known() {
    const auto r = run({"formats", "--json"});
    REQUIRE(r.rc == 0);
    const json j = r.json();
    for (const auto& f : j.at("formats")) {
      for (const auto& e : f.at("extensions")) extensions.insert(e.get<std::string>());
      directories = directories || f.at("caps").at("directory").get<bool>();
    }
  }
};

std::optional<DType> parse_dtype(const std::string& s) {
  if (auto d = ckpt::dtype_from_safetensors(s)) return d;
  return ckpt::dtype_from_name(s);
}

/// The checkpoint an expected.json describes: NAME.<ext> beside it, or (for a directory that
/// holds no such file) the directory itself.
fs::path checkpoint_for(const fs::path& expected) {
  const std::string stem = expected.filename().string().substr(0, expected.filename().string().size() - std::string(".expected.json").size());
  for (const auto& e : fs::directory_iterator(expected.parent_path())) {
    const auto n = e.path().filename().string();
    if (n.rfind(stem + ".", 0) == 0 && n.find(".expected.") == std::string::npos) return e.path();
  }
  return expected.parent_path();
}

/// The name torch's state_dict() gives a tensor at `keys` of a whole pickled module read with
/// --inert-objects: its record fields ("$state", and "_modules" / "_parameters" / "_buffers"
/// right below one) left out — {"$state", "_modules", "0", "$state", "_parameters", "weight"}
/// is "0.weight". Other keys are joined as they are.
std::string state_dict_name(const std::vector<std::string>& keys) {
  std::string joined;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == "$state") continue;
    if (i > 0 && keys[i - 1] == "$state" && (keys[i] == "_modules" || keys[i] == "_parameters" || keys[i] == "_buffers")) continue;
    joined += (joined.empty() ? "" : ".") + keys[i];
  }
  return joined;
}

/// `args` with `flags` (e.g. --inert-objects) added after the command.
std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& flags) {
  args.insert(args.begin() + 1, flags.begin(), flags.end());
  return args;
}

void check_fixture(const fs::path& ckpt_path, const json& expected, const ckpt::StateDict* values, ckpt_test::TempDir& tmp,
                   const std::vector<std::string>& flags = {}) {
  const auto ls = run(with({"ls", "--json", ckpt_path.string()}, flags));
  INFO(ls.err);
  REQUIRE(ls.rc == 0);
  const json j = ls.json();
  std::map<std::string, json> by_joined;
  for (const auto& e : j.at("entries")) by_joined[state_dict_name(e.at("keys").get<std::vector<std::string>>())] = e;
  const json& tensors = expected.at("tensors");
  CHECK(j.at("entries").size() == tensors.size());
  for (const auto& [key, want] : tensors.items()) {
    INFO("tensor " << key);
    REQUIRE(by_joined.count(key) == 1);
    const json& e = by_joined[key];
    const auto dt = parse_dtype(want.at("dtype").get<std::string>());
    REQUIRE(dt);
    CHECK(e.at("dtype") == std::string(ckpt::name(*dt)));
    CHECK(e.at("shape") == want.at("shape"));
  }

  const auto v = run(with({"verify", ckpt_path.string()}, flags));
  CHECK(v.rc == 0);

  const auto st = run(with({"stats", "--json", ckpt_path.string()}, flags));
  REQUIRE(st.rc == 0);
  if (values) {  // NaN counts of the float tensors, from the writer's expected values
    std::map<std::string, json> stats;
    const json sj = st.json();
    for (const auto& s : sj.at("tensors")) stats[state_dict_name(ckpt::KeyPath::parse(s.at("key").get<std::string>()).keys())] = s;
    for (const auto& [p, leaf] : values->flatten()) {
      if (!leaf->is_tensor() || (leaf->tensor().dtype() != DType::f32 && leaf->tensor().dtype() != DType::f64)) continue;
      const std::string key = p.joined();
      if (!stats.count(key)) continue;
      std::uint64_t nan = 0;
      const ckpt::Tensor& t = leaf->tensor();
      for (std::int64_t i = 0; i < t.numel(); ++i)
        nan += t.dtype() == DType::f32 ? std::isnan(t.values<float>()[static_cast<std::size_t>(i)]) : std::isnan(t.values<double>()[static_cast<std::size_t>(i)]);
      INFO("stats " << key);
      CHECK(stats[key].at("nan") == nan);
    }
  }

  const auto out = tmp / (ckpt_path.stem().string() + "-" + std::to_string(std::hash<std::string>{}(ckpt_path.string())) + ".ckpt");
  const auto c = run(with({"convert", ckpt_path.string(), out.string()}, flags));
  INFO(c.err);
  REQUIRE(c.rc == 0);
  const auto d = run(with({"diff", "--json", ckpt_path.string(), out.string()}, flags));
  INFO(d.out);
  CHECK(d.rc == 0);
}

/// What torch26/'s files hold beyond tensors (their README and expected.json notes), and that
/// they survive convert to .safetensors and back to .pt.
void check_torch26(const fs::path& cp, const std::vector<std::string>& flags, ckpt_test::TempDir& tmp) {
  const std::string name = cp.stem().string();
  const json j = run(with({"ls", "--json", cp.string()}, flags)).json();
  std::map<std::string, json> values;
  for (const auto& v : j.at("values")) values[v.at("key").get<std::string>()] = v.at("value");
  std::map<std::string, std::string> classes;
  for (const auto& o : j.at("objects")) classes[o.at("key").get<std::string>()] = o.at("class").get<std::string>();
  if (name == "numpy_values") {  // best_acc=0.71 f64, steps=1234 i64, flag=True
    CHECK(values["best_acc"] == 0.71);
    CHECK(values["steps"] == 1234);
    CHECK(values["flag"] == true);
  } else if (name == "reference_args") {
    CHECK(classes["args"] == "argparse.Namespace");
    CHECK(values["args"].at("$state").is_object());
    CHECK(values["epoch"].is_number_integer());
  } else if (name == "whole_module") {
    CHECK(classes[""] == "torch.nn.modules.container.Sequential");
    CHECK(classes["$state._modules.1"] == "torch.nn.modules.batchnorm.BatchNorm2d");
    CHECK(classes.size() == 6);
  } else if (name == "sets_bytes") {  // set, frozenset, bytes, bytearray, complex, tuple
    CHECK(values["tags"].at("$class") == "builtins.set");
    CHECK(values["frozen"].at("$class") == "builtins.frozenset");
    CHECK(values["raw"].at("$class") == "builtins.bytes");
    CHECK(values["ba"].at("$class") == "builtins.bytearray");
    CHECK(values["c"].at("$class") == "builtins.complex");
    CHECK(values["t"].is_array());
  } else {
    FAIL("a torch26 fixture this test does not know: " << name);
  }
  const auto mid = tmp / (name + ".safetensors"), back = tmp / (name + "-back.pt");
  REQUIRE(run(with({"convert", cp.string(), mid.string()}, flags)).rc == 0);
  REQUIRE(run({"convert", mid.string(), back.string()}).rc == 0);
  for (const auto& f : {mid, back}) {
    const auto d = run(with({"diff", cp.string(), f.string()}, flags));
    INFO(f.string() << "\n" << d.out);
    CHECK(d.rc == 0);
  }
}

}  // namespace

TEST_CASE("shared fixtures of known formats are listed and verified and converted and the rest refused") {
  const Known known;
  ckpt_test::TempDir tmp;
  std::size_t read = 0, refused = 0;
  std::vector<fs::path> expected_files;
  for (const auto& e : fs::recursive_directory_iterator(fixtures)) {
    const auto n = e.path().filename().string();
    if (n.size() > 14 && n.compare(n.size() - 14, 14, ".expected.json") == 0) expected_files.push_back(e.path());
  }
  std::sort(expected_files.begin(), expected_files.end());
  REQUIRE(!expected_files.empty());
  for (const auto& ex : expected_files) {
    const fs::path cp = checkpoint_for(ex);
    INFO("fixture " << cp.string());
    const bool is_dir = fs::is_directory(cp);
    const bool is_known = is_dir ? known.directories : known.extensions.count(cp.extension().string()) > 0;
    const bool legacy = cp.parent_path().filename() == "torch-legacy";
    if (!is_known) {
      const auto r = run({"ls", cp.string()});
      CHECK(r.rc == 2);
      CHECK(r.err_lines().size() == 1);
      ++refused;
      continue;
    }
    if (legacy) {  // the README allows refusing the pre-1.6 format with a clear error
      const auto r = run({"ls", cp.string()});
      if (r.rc != 0) {
        CHECK(r.rc == 2);
        CHECK(r.err_lines().size() == 1);
        ++refused;
        continue;
      }
    }
    std::vector<std::string> flags;
    if (cp.parent_path().filename() == "torch26") {
      // Python objects (a Namespace, whole modules) need --inert-objects; without it the file
      // is refused with one line naming the global and the flag. NumPy values, sets and bytes
      // load by default.
      const auto r = run({"ls", cp.string()});
      if (r.rc != 0) {
        CHECK(r.rc == 2);
        REQUIRE(r.err_lines().size() == 1);
        CHECK_THAT(r.err_lines()[0], ckpt_test::Contains("pickle refers to global '") && ckpt_test::Contains("--inert-objects"));
        flags = {"--inert-objects"};
      }
      CHECK((r.rc == 0) == (cp.stem() == "numpy_values" || cp.stem() == "sets_bytes"));
      check_torch26(cp, flags, tmp);
    }
    std::optional<ckpt::StateDict> values;
    const auto npz = ex.parent_path() / (ex.filename().string().substr(0, ex.filename().string().size() - 5) + ".npz");
    if (fs::exists(npz)) {
      try {
        values = ckpt::load(npz);
      } catch (const ckpt::error&) {  // no .npz reader in this build
      }
    }
    check_fixture(cp, read_json(ex), values ? &*values : nullptr, tmp, flags);
    ++read;
  }
  // A broken file is refused whatever the build knows.
  const auto broken = run({"ls", (fixtures / "torch-legacy" / "broken.pt").string()});
  CHECK(broken.rc == 2);
  CHECK(broken.err_lines().size() == 1);
  CHECK(read + refused == expected_files.size());
}
