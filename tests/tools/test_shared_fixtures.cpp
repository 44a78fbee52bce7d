// The ckpt tool on checkpoints written by other programs (../shared/fixtures, see its README):
// for every fixture whose format this build knows, `ls --json` lists exactly the tensors the
// writer's own reader saw (key, dtype, shape), `verify` passes, `stats` counts the NaNs the
// expected values hold, and `convert` to .ckpt gives a file that `diff` finds equal. Fixtures
// of formats this build does not know are refused with exit 2 and one line.
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

void check_fixture(const fs::path& ckpt_path, const json& expected, const ckpt::StateDict* values, ckpt_test::TempDir& tmp) {
  const auto ls = run({"ls", "--json", ckpt_path.string()});
  INFO(ls.err);
  REQUIRE(ls.rc == 0);
  const json j = ls.json();
  std::map<std::string, json> by_joined;
  for (const auto& e : j.at("entries")) {
    std::string joined;
    for (const auto& k : e.at("keys")) joined += (joined.empty() ? "" : ".") + k.get<std::string>();
    by_joined[joined] = e;
  }
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

  const auto v = run({"verify", ckpt_path.string()});
  CHECK(v.rc == 0);

  const auto st = run({"stats", "--json", ckpt_path.string()});
  REQUIRE(st.rc == 0);
  if (values) {  // NaN counts of the float tensors, from the writer's expected values
    std::map<std::string, json> stats;
    const json sj = st.json();
    for (const auto& s : sj.at("tensors")) {
      std::string joined;
      const auto path = ckpt::KeyPath::parse(s.at("key").get<std::string>());
      for (const auto& k : path.keys()) joined += (joined.empty() ? "" : ".") + k;
      stats[joined] = s;
    }
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
  const auto c = run({"convert", ckpt_path.string(), out.string()});
  INFO(c.err);
  REQUIRE(c.rc == 0);
  const auto d = run({"diff", "--json", ckpt_path.string(), out.string()});
  INFO(d.out);
  CHECK(d.rc == 0);
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
    if (cp.parent_path().filename() == "torch26") {
      // Pickles that hold Python objects beyond weights_only's set (argparse.Namespace, NumPy
      // values, whole modules, sets): reading them is issue 16. Until it lands they must be
      // refused with one line that names the global, never misread.
      const auto r = run({"ls", cp.string()});
      CHECK(r.rc == 2);
      REQUIRE(r.err_lines().size() == 1);
      CHECK_THAT(r.err_lines()[0], ckpt_test::Contains("pickle refers to global '"));
      ++refused;
      continue;
    }
    std::optional<ckpt::StateDict> values;
    const auto npz = ex.parent_path() / (ex.filename().string().substr(0, ex.filename().string().size() - 5) + ".npz");
    if (fs::exists(npz)) {
      try {
        values = ckpt::load(npz);
      } catch (const ckpt::error&) {  // no .npz reader in this build
      }
    }
    check_fixture(cp, read_json(ex), values ? &*values : nullptr, tmp);
    ++read;
  }
  // A broken file is refused whatever the build knows.
  const auto broken = run({"ls", (fixtures / "torch-legacy" / "broken.pt").string()});
  CHECK(broken.rc == 2);
  CHECK(broken.err_lines().size() == 1);
  CHECK(read + refused == expected_files.size());
}
