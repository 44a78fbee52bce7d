// The ckpt tool's read-only commands on checkpoints written by the library: `ls`, `info`,
// `stats` and `formats` (JSON output parsed and checked against what the library itself
// reads), the error contract (exit 2 and one line on stderr) and the progress bar.
#include "ckpt_catch.hpp"

#include <cmath>
#include <map>

#include "tool_fixtures.hpp"
#include "tool_runner.hpp"

using namespace tool_test;
using nlohmann::json;

namespace {

/// Every tensor and value leaf of `sd`, by escaped key path.
struct Leaves {
  std::map<std::string, const ckpt::StateDict*> tensors, values;
  explicit Leaves(const ckpt::StateDict& sd) {
    for (const auto& [p, leaf] : sd.flatten()) (leaf->is_tensor() ? tensors : values)[p.str()] = leaf;
  }
};

}  // namespace

TEST_CASE("formats --json lists every built-in backend") {
  const auto r = run({"formats", "--json"});
  REQUIRE(r.rc == 0);
  const auto j = r.json();
  std::vector<std::string> names;
  for (const auto& f : j.at("formats")) names.push_back(f.at("name"));
  std::vector<std::string> want;
  for_each_format([&]<class F>(F) { want.push_back(name_of<F>()); });
  CHECK(names == want);
}

TEST_CASE("ls --json on every built-in format lists what the library reads") {
  ckpt_test::TempDir dir;
  for_each_format([&]<class F>(F) {
    INFO("format " << name_of<F>());
    const auto path = path_for<F>(dir.path(), "model");
    write_fixture<F>(path);
    const ckpt::StateDict loaded = ckpt::load_as<F>(path);
    const auto r = run({"ls", "--json", path.string()});
    INFO(r.err);
    REQUIRE(r.rc == 0);
    CHECK(r.err.empty());
    const json j = r.json();
    CHECK(j.at("command") == "ls");
    CHECK(j.at("kind") == "checkpoint");
    CHECK(j.at("format") == name_of<F>());
    const Leaves want(loaded);
    REQUIRE(j.at("entries").size() == want.tensors.size());
    for (const auto& [key, leaf] : want.tensors) {
      INFO("tensor " << key);
      const json e = find_key(j.at("entries"), key);
      REQUIRE(e.is_object());
      const auto& t = leaf->tensor();
      CHECK(e.at("dtype") == std::string(ckpt::name(t.dtype())));
      CHECK(e.at("shape").get<ckpt::Shape>() == t.shape());
      CHECK(e.at("nbytes") == t.nbytes());
      if (e.at("codec") == "raw") CHECK(e.at("stored_nbytes") == t.nbytes());
      CHECK(e.at("keys").get<std::vector<std::string>>() == ckpt::KeyPath::parse(key).keys());
    }
    REQUIRE(j.at("values").size() == want.values.size());
    for (const auto& [key, leaf] : want.values) {
      INFO("value " << key);
      const json v = find_key(j.at("values"), key);
      REQUIRE(v.is_object());
      CHECK(v.at("value") == json(leaf->value()));
    }
  });
}

TEST_CASE("ls text output names the format and every tensor and value") {
  ckpt_test::TempDir dir;
  ckpt::save(dir / "m.ckpt", model());
  const auto r = run({"ls", (dir / "m.ckpt").string()});
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("native") != std::string::npos);
  CHECK(r.out.find("model.0\\.weight") != std::string::npos);
  CHECK(r.out.find("optimizer.state.0.exp_avg") != std::string::npos);
  CHECK(r.out.find("epoch") != std::string::npos);
  CHECK(r.out.find("\"tiny\"") != std::string::npos);
}

TEST_CASE("info --json reports totals and version and codecs and alignment") {
  ckpt_test::TempDir dir;
  const ckpt::StateDict sd = model();
  ckpt::SaveOptions zo;
  zo.codec = "zlib";
  ckpt::save(dir / "z.ckpt", sd, zo);
  std::uint64_t bytes = 0, elements = 0;
  std::map<std::string, std::size_t> dtypes;
  std::size_t values = 0;
  for (const auto& [p, leaf] : sd.flatten()) {
    if (!leaf->is_tensor()) {
      ++values;
      continue;
    }
    bytes += leaf->tensor().nbytes();
    elements += static_cast<std::uint64_t>(leaf->tensor().numel());
    ++dtypes[std::string(ckpt::name(leaf->tensor().dtype()))];
  }
  const auto r = run({"info", "--json", (dir / "z.ckpt").string()});
  REQUIRE(r.rc == 0);
  const json j = r.json();
  CHECK(j.at("format") == "native");
  CHECK(j.at("format_version") == ckpt::native_format_version);
  CHECK(j.at("tensors") == sd.tensor_count());
  CHECK(j.at("values") == values);
  CHECK(j.at("tensor_bytes") == bytes);
  CHECK(j.at("elements") == elements);
  CHECK(j.at("size_on_disk") == std::filesystem::file_size(dir / "z.ckpt"));
  CHECK(j.at("stored_bytes").get<std::uint64_t>() < bytes);  // the zeros tensor compresses
  CHECK(j.at("codecs").at("zlib").get<int>() >= 1);
  for (const auto& [k, n] : dtypes) CHECK(j.at("dtypes").at(k) == n);
  const auto align = j.at("alignment").get<std::uint64_t>();
  CHECK(align >= 64);
  CHECK(align % 64 == 0);
  CHECK(j.at("caps").at("checksums") == true);

  // Every backend: size on disk and counts agree with the library.
  for_each_format([&]<class F>(F) {
    INFO("format " << name_of<F>());
    const auto path = path_for<F>(dir.path(), "all");
    const auto written = write_fixture<F>(path);
    const auto ri = run({"info", "--json", path.string()});
    INFO(ri.err);
    REQUIRE(ri.rc == 0);
    const json ji = ri.json();
    std::uint64_t disk = 0;
    if (std::filesystem::is_directory(path)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(path))
        if (e.is_regular_file()) disk += e.file_size();
    } else {
      disk = std::filesystem::file_size(path);
    }
    CHECK(ji.at("size_on_disk") == disk);
    CHECK(ji.at("format") == name_of<F>());
    CHECK(ji.at("tensors") == ckpt::load_as<F>(path).tensor_count());
  });
}

TEST_CASE("stats --json computes min max mean std and NaN/Inf/zero counts") {
  ckpt_test::TempDir dir;
  const ckpt::StateDict sd = model();
  ckpt::save(dir / "m.ckpt", sd);
  const auto r = run({"stats", "--json", (dir / "m.ckpt").string()});
  REQUIRE(r.rc == 0);
  const json j = r.json();
  REQUIRE(j.at("tensors").size() == sd.tensor_count());

  // The special-values tensor: counts, and statistics over its finite elements.
  const json sp = find_key(j.at("tensors"), "special");
  REQUIRE(sp.is_object());
  std::vector<double> finite;
  std::uint64_t nan = 0, inf = 0, zeros = 0;
  for (float v : special_values()) {
    if (std::isnan(v)) ++nan;
    else if (std::isinf(v)) ++inf;
    else {
      finite.push_back(v);
      zeros += v == 0.0f;
    }
  }
  CHECK(sp.at("nan") == nan);
  CHECK(sp.at("inf") == inf);
  CHECK(sp.at("zeros") == zeros);
  CHECK(sp.at("finite") == finite.size());
  double mean = 0;
  for (double v : finite) mean += v;
  mean /= static_cast<double>(finite.size());
  double var = 0;
  for (double v : finite) var += (v - mean) * (v - mean);
  var /= static_cast<double>(finite.size());
  CHECK(sp.at("min").get<double>() == *std::min_element(finite.begin(), finite.end()));
  CHECK(sp.at("max").get<double>() == *std::max_element(finite.begin(), finite.end()));
  CHECK(sp.at("mean").get<double>() == Approx(mean).epsilon(1e-12));
  CHECK(sp.at("std").get<double>() == Approx(std::sqrt(var)).epsilon(1e-12));

  // Random tensors of several dtypes: two-pass statistics computed here from the library's load.
  for (const std::string key : {"model.0\\.weight", "model.norm.running_mean", "emb", "half"}) {
    INFO(key);
    const ckpt::Tensor& t = sd.at(key).tensor();
    std::vector<double> x;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      switch (t.dtype()) {
        case DType::f32: x.push_back(t.values<float>()[static_cast<std::size_t>(i)]); break;
        case DType::f64: x.push_back(t.values<double>()[static_cast<std::size_t>(i)]); break;
        case DType::bf16: x.push_back(static_cast<float>(t.values<ckpt::bfloat16>()[static_cast<std::size_t>(i)])); break;
        case DType::f16: x.push_back(static_cast<float>(t.values<ckpt::float16>()[static_cast<std::size_t>(i)])); break;
        default: FAIL("unexpected dtype");
      }
    }
    double m = 0, v = 0;
    for (double a : x) m += a;
    m /= static_cast<double>(x.size());
    for (double a : x) v += (a - m) * (a - m);
    v /= static_cast<double>(x.size());
    const json s = find_key(j.at("tensors"), key);
    REQUIRE(s.is_object());
    CHECK(s.at("numel") == x.size());
    CHECK(s.at("nan") == 0);
    CHECK(s.at("min").get<double>() == *std::min_element(x.begin(), x.end()));
    CHECK(s.at("max").get<double>() == *std::max_element(x.begin(), x.end()));
    CHECK(s.at("mean").get<double>() == Approx(m).epsilon(1e-9).margin(1e-12));
    CHECK(s.at("std").get<double>() == Approx(std::sqrt(v)).epsilon(1e-9));
  }
  // Integers keep exact minimum and maximum; an empty tensor has no statistics.
  const json ids = find_key(j.at("tensors"), "ids");
  CHECK(ids.at("min") == -5);
  CHECK(ids.at("max") == 12);
  CHECK(ids.at("zeros") == 1);
  const json nbt = find_key(j.at("tensors"), "model.norm.num_batches_tracked");
  CHECK(nbt.at("min") == 7);
  CHECK(nbt.at("max") == 7);
  CHECK(nbt.at("std").get<double>() == 0.0);
  const json empty = find_key(j.at("tensors"), "empty");
  CHECK(empty.at("numel") == 0);
  CHECK(empty.at("min").is_null());
  CHECK(empty.at("mean").is_null());
  CHECK(find_key(j.at("tensors"), "zeros").at("zeros") == 256);
}

TEST_CASE("stats selects tensors by key path or prefix and refuses unknown keys") {
  ckpt_test::TempDir dir;
  ckpt::save(dir / "m.ckpt", model());
  const auto r = run({"stats", "--json", (dir / "m.ckpt").string(), "model", "emb"});
  REQUIRE(r.rc == 0);
  std::vector<std::string> keys;
  const json j = r.json();
  for (const auto& t : j.at("tensors")) keys.push_back(t.at("key"));
  CHECK(keys == std::vector<std::string>{"model.0\\.weight", "model.0\\.bias", "model.norm.running_mean",
                                         "model.norm.num_batches_tracked", "emb"});
  const auto by_joined = run({"stats", "--json", (dir / "m.ckpt").string(), "model.0.weight"});
  REQUIRE(by_joined.rc == 0);
  CHECK(by_joined.json().at("tensors").size() == 1);
  const auto bad = run({"stats", (dir / "m.ckpt").string(), "no.such.key"});
  CHECK(bad.rc == 2);
  CHECK(bad.out.empty());
  REQUIRE(bad.err_lines().size() == 1);
  CHECK(bad.err.find("no.such.key") != std::string::npos);
}

TEST_CASE("unreadable or invalid input is exit 2 with one line on stderr naming the file") {
  ckpt_test::TempDir dir;
  std::vector<char> junk(1000);
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919) & 0xff);
  ckpt_test::write_bytes(dir / "junk.bin", junk);
  ckpt_test::write_bytes(dir / "empty.ckpt", {});
  ckpt::save(dir / "good.ckpt", model());
  auto bytes = ckpt_test::read_bytes(dir / "good.ckpt");
  bytes.resize(bytes.size() / 2);
  ckpt_test::write_bytes(dir / "half.ckpt", bytes);
  const std::string good = (dir / "good.ckpt").string();
  for (const std::string bad : {"junk.bin", "empty.ckpt", "half.ckpt", "missing.ckpt"}) {
    const std::string p = (dir / bad).string();
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{"ls", p}, {"ls", "--json", p}, {"info", p}, {"stats", p}, {"diff", good, p},
                                               {"diff", p, good}, {"convert", p, (dir / "out.ckpt").string()}}) {
      INFO(args[0] << " " << bad);
      const auto r = run(args);
      CHECK(r.rc == 2);
      CHECK(r.out.empty());
      REQUIRE(r.err_lines().size() == 1);
      CHECK(r.err.find(bad) != std::string::npos);
      CHECK(!std::filesystem::exists(dir / "out.ckpt"));
    }
  }
  // verify judges damage (exit 1) but cannot judge what is not a checkpoint at all (exit 2).
  for (const std::string bad : {"junk.bin", "missing.ckpt"}) {
    const auto r = run({"verify", (dir / bad).string()});
    CHECK(r.rc == 2);
    REQUIRE(r.err_lines().size() == 1);
    CHECK(r.err.find(bad) != std::string::npos);
  }
}

TEST_CASE("usage errors are exit 2 with one line and --help / --version exit 0") {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"ls"}, {"ls", "a", "b"}, {"diff", "a"}, {"diff", "a", "b", "--rtol"}, {"diff", "a", "b", "--rtol", "x"},
           {"diff", "a", "b", "--atol=-1"}, {"ls", "a", "--rtol", "1"}, {"ls", "--bogus", "a"}, {"convert", "a"}}) {
    INFO(args.size());
    const auto r = run(args);
    CHECK(r.rc == 2);
    CHECK(r.err_lines().size() == 1);
  }
  const auto h = run({"--help"});
  CHECK(h.rc == 0);
  CHECK(h.out.find("convert") != std::string::npos);
  const auto v = run({"--version"});
  CHECK(v.rc == 0);
  CHECK(v.out.find(ckpt::version_string) != std::string::npos);
}

TEST_CASE("convert to an unknown format is exit 2 and writes nothing") {
  ckpt_test::TempDir dir;
  ckpt::save(dir / "m.ckpt", model());
  const auto r = run({"convert", (dir / "m.ckpt").string(), (dir / "o.x").string(), "--format", "nope"});
  CHECK(r.rc == 2);
  CHECK(r.err_lines().size() == 1);
  CHECK(r.err.find("nope") != std::string::npos);
  CHECK(dir.list() == std::vector<std::string>{"m.ckpt"});
}

TEST_CASE("progress bar is drawn on a terminal and absent otherwise") {
  ckpt_test::TempDir dir;
  ckpt::save(dir / "m.ckpt", model());
  const std::vector<std::string> env{"CKPT_PROGRESS_DELAY=0"};
  for (const std::string cmd : {"stats", "verify"}) {
    INFO(cmd);
    const auto tty = run({cmd, "--json", (dir / "m.ckpt").string()}, env, true);
    REQUIRE(tty.rc == 0);
    CHECK(tty.err.find('\r') != std::string::npos);
    CHECK(tty.err.find(cmd) != std::string::npos);
    CHECK(tty.err.find("100%") != std::string::npos);
    CHECK(tty.json().at("command") == cmd);  // stdout stays clean JSON
    const auto file = run({cmd, "--json", (dir / "m.ckpt").string()}, env, false);
    REQUIRE(file.rc == 0);
    CHECK(file.err.empty());
  }
  // Work shorter than the delay draws nothing, even on a terminal.
  const auto quick = run({"stats", (dir / "m.ckpt").string()}, {"CKPT_PROGRESS_DELAY=100000"}, true);
  CHECK(quick.rc == 0);
  CHECK(quick.err.find('%') == std::string::npos);
}
