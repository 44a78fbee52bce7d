// The ckpt tool's `diff`, `verify` and `convert`, and `ls` / `verify` on a CheckpointManager
// directory, on checkpoints written by the library; JSON output parsed, exit codes checked.
#include "ckpt_catch.hpp"

#include <cmath>
#include <cstring>

#include "rawdir.hpp"  // examples/: a backend this tool does not know
#include "tool_fixtures.hpp"
#include "tool_runner.hpp"

using namespace tool_test;
using nlohmann::json;

namespace {

/// Flip one byte of `file` at `offset`.
void flip_byte(const fs::path& file, std::uint64_t offset) {
  auto b = ckpt_test::read_bytes(file);
  REQUIRE(offset < b.size());
  b[offset] = static_cast<char>(b[offset] ^ 0x5a);
  ckpt_test::write_bytes(file, b);
}

/// Offset of the first byte of the tensor at `key` in a native file.
std::uint64_t native_offset(const fs::path& file, const ckpt::KeyPath& key) {
  ckpt::native::InputArchive ar(file);
  for (std::size_t i = 0; i < ar.entries().size(); ++i)
    if (ar.entries()[i].path == key) return ar.offset(i);
  FAIL("no entry " << key.str());
  return 0;
}

/// Middle of the first run of at least `n` zero bytes in `file`, if any.
std::optional<std::uint64_t> zero_run(const fs::path& file, std::size_t n) {
  const auto b = ckpt_test::read_bytes(file);
  std::size_t run = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    run = b[i] == 0 ? run + 1 : 0;
    if (run == n) return i - n / 2;
  }
  return std::nullopt;
}

/// The tensor leaf of `sd` at `p`, or failing that the one whose joined name matches.
const ckpt::StateDict* find_tensor(const ckpt::StateDict& sd, const ckpt::KeyPath& p) {
  if (const auto* n = sd.find(p); n && n->is_tensor()) return n;
  for (const auto& [q, leaf] : sd.flatten())
    if (leaf->is_tensor() && q.joined() == p.joined()) return leaf;
  return nullptr;
}

}  // namespace

TEST_CASE("diff finds a checkpoint equal to itself in every format") {
  ckpt_test::TempDir dir;
  for_each_format([&]<class F>(F) {
    INFO("format " << name_of<F>());
    const auto path = path_for<F>(dir.path(), "m");
    write_fixture<F>(path);
    const auto native = dir / ("m-" + name_of<F>() + ".ckpt");
    ckpt::save(native, ckpt::load_as<F>(path));
    const auto r = run({"diff", "--json", path.string(), native.string()});
    INFO(r.out << r.err);
    REQUIRE(r.rc == 0);
    const json j = r.json();
    CHECK(j.at("equal") == true);
    CHECK(j.at("a").at("format") == name_of<F>());
    CHECK(j.at("only_in_a").empty());
    CHECK(j.at("only_in_b").empty());
    CHECK(!j.at("tensors").empty());
    for (const auto& t : j.at("tensors")) CHECK(t.at("status") == "equal");
    for (const auto& v : j.at("values")) CHECK(v.at("equal") == true);
  });
}

TEST_CASE("diff reports added and removed and retyped and reshaped and changed entries with exit 1") {
  ckpt_test::TempDir dir;
  const ckpt::StateDict a = model();
  ckpt::StateDict b = model();
  ckpt::Tensor bias = b.at("model.0\\.bias").tensor().clone();
  const float before = bias.values<float>()[0];
  bias.mutable_values<float>()[0] = before + 1e-3f;
  b["model"].set("0.bias", bias);
  b.erase("half");
  b["extra"] = ckpt::Tensor::from<float>({1.0f});
  b["ids"] = ckpt::Tensor::from<std::int64_t>({-5, 0, 12});
  b["emb"] = ckpt_test::random_tensor(DType::bf16, {10}, 4);
  b["epoch"] = 4;
  ckpt::save(dir / "a.ckpt", a);
  ckpt::save(dir / "b.ckpt", b);
  const auto r = run({"diff", "--json", (dir / "a.ckpt").string(), (dir / "b.ckpt").string()});
  REQUIRE(r.rc == 1);
  const json j = r.json();
  CHECK(j.at("equal") == false);
  REQUIRE(j.at("only_in_a").size() == 1);
  CHECK(j.at("only_in_a")[0].at("key") == "half");
  REQUIRE(j.at("only_in_b").size() == 1);
  CHECK(j.at("only_in_b")[0].at("key") == "extra");
  const json tb = find_key(j.at("tensors"), "model.0\\.bias");
  CHECK(tb.at("status") == "different");
  CHECK(tb.at("mismatched") == 1);
  const double diff = std::fabs(static_cast<double>(before + 1e-3f) - static_cast<double>(before));
  CHECK(tb.at("max_abs").get<double>() == Approx(diff).epsilon(1e-12));
  CHECK(tb.at("max_rel").get<double>() == Approx(diff / std::fabs(static_cast<double>(before + 1e-3f))).epsilon(1e-12));
  const json ids = find_key(j.at("tensors"), "ids");
  CHECK(ids.at("status") == "dtype");
  CHECK(ids.at("dtype_a") == "i32");
  CHECK(ids.at("dtype_b") == "i64");
  CHECK(ids.at("mismatched") == 0);  // same values
  CHECK(find_key(j.at("tensors"), "emb").at("status") == "shape");
  CHECK(find_key(j.at("tensors"), "model.0\\.weight").at("status") == "equal");
  const json ep = find_key(j.at("values"), "epoch");
  CHECK(ep.at("equal") == false);
  CHECK(ep.at("a") == 3);
  CHECK(ep.at("b") == 4);
  const auto text = run({"diff", (dir / "a.ckpt").string(), (dir / "b.ckpt").string()});
  CHECK(text.rc == 1);
  CHECK(text.out.find("only in A: half") != std::string::npos);
}

TEST_CASE("diff --atol and --rtol decide equality within tolerance and NaN only equals NaN") {
  ckpt_test::TempDir dir;
  const ckpt::StateDict a = model();
  ckpt::StateDict b = model();
  ckpt::Tensor w = b.at("model.0\\.weight").tensor().clone();
  for (auto& x : w.mutable_values<float>()) x *= 1.0f + 1e-5f;
  b["model"].set("0.weight", w);
  ckpt::save(dir / "a.ckpt", a);
  ckpt::save(dir / "b.ckpt", b);
  const std::string pa = (dir / "a.ckpt").string(), pb = (dir / "b.ckpt").string();
  const auto exact = run({"diff", "--json", pa, pb});
  REQUIRE(exact.rc == 1);
  const json t = find_key(exact.json().at("tensors"), "model.0\\.weight");
  const double max_abs = t.at("max_abs"), max_rel = t.at("max_rel");
  REQUIRE(max_abs > 0);
  CHECK(run({"diff", pa, pb, "--atol", std::to_string(max_abs * 2)}).rc == 0);
  CHECK(run({"diff", pa, pb, "--atol", std::to_string(max_abs / 2)}).rc == 1);
  CHECK(run({"diff", pa, pb, "--rtol", std::to_string(max_rel * 2)}).rc == 0);
  CHECK(run({"diff", pa, pb, "--rtol=" + std::to_string(max_rel / 2)}).rc == 1);
  const auto close = run({"diff", "--json", pa, pb, "--atol", std::to_string(max_abs * 2)});
  CHECK(close.json().at("equal") == true);
  CHECK(find_key(close.json().at("tensors"), "model.0\\.weight").at("status") == "close");

  ckpt::StateDict c = model();
  std::vector<float> sp = special_values();
  sp[4] = 1.0f;  // the NaN becomes a number
  c["special"] = ckpt::Tensor::from<float>(std::span<const float>(sp));
  ckpt::save(dir / "c.ckpt", c);
  const auto nan = run({"diff", "--json", pa, (dir / "c.ckpt").string(), "--atol", "1e6"});
  CHECK(nan.rc == 1);
  CHECK(find_key(nan.json().at("tensors"), "special").at("mismatched") == 1);
}

TEST_CASE("verify passes good checkpoints of every format") {
  ckpt_test::TempDir dir;
  for_each_format([&]<class F>(F) {
    INFO("format " << name_of<F>());
    const auto path = path_for<F>(dir.path(), "m");
    write_fixture<F>(path);
    const auto r = run({"verify", "--json", path.string()});
    INFO(r.err);
    REQUIRE(r.rc == 0);
    const json j = r.json();
    CHECK(j.at("ok") == true);
    CHECK(j.at("format") == name_of<F>());
    CHECK(j.at("checked") == j.at("entries"));
    CHECK(j.at("checksums") == ckpt::archive_traits<F>::caps.checksums);
    CHECK(j.at("first_bad").is_null());
  });
}

TEST_CASE("verify finds a flipped tensor byte and names the entry with exit 1") {
  ckpt_test::TempDir dir;
  const auto p = dir / "m.ckpt";
  ckpt::save(p, model());
  flip_byte(p, native_offset(p, ckpt::KeyPath{"model", "0.bias"}) + 3);
  const auto r = run({"verify", "--json", p.string()});
  REQUIRE(r.rc == 1);
  const json j = r.json();
  CHECK(j.at("ok") == false);
  CHECK(j.at("first_bad").at("key") == "model.0\\.bias");
  CHECK(j.at("bad").size() == 1);
  REQUIRE(r.err_lines().size() == 1);
  CHECK(r.err.find("checksum") != std::string::npos);
  const auto text = run({"verify", p.string()});
  CHECK(text.rc == 1);
  CHECK(text.out.find("model.0\\.bias") != std::string::npos);

  // A truncated file is damage too.
  ckpt::save(dir / "t.ckpt", model());
  auto bytes = ckpt_test::read_bytes(dir / "t.ckpt");
  bytes.resize(bytes.size() - 40);
  ckpt_test::write_bytes(dir / "t.ckpt", bytes);
  const auto t = run({"verify", "--json", (dir / "t.ckpt").string()});
  CHECK(t.rc == 1);
  CHECK(t.json().at("ok") == false);

  // Every backend with checksums: flip a byte inside the 1 KiB "zeros" tensor.
  for_each_format([&]<class F>(F) {
    if constexpr (ckpt::archive_traits<F>::caps.checksums && !ckpt::archive_traits<F>::caps.directory) {
      INFO("format " << name_of<F>());
      const auto path = path_for<F>(dir.path(), "z");
      write_fixture<F>(path);
      if (const auto off = zero_run(path, 1024)) {
        flip_byte(path, *off);
        const auto rz = run({"verify", "--json", path.string()});
        INFO(rz.out << rz.err);
        CHECK(rz.rc == 1);
        CHECK(rz.json().at("first_bad").at("key") == "zeros");
      }
    }
  });
}

TEST_CASE("convert between every pair of formats writes what the library writes with tensors bit-exact") {
  ckpt_test::TempDir dir;
  std::size_t converted = 0, refused = 0;
  for_each_format([&]<class S>(S) {
    const auto src = path_for<S>(dir.path(), "src-" + name_of<S>());
    write_fixture<S>(src);
    const ckpt::StateDict loaded = ckpt::load_as<S>(src);
    for_each_format([&]<class T>(T) {
      INFO(name_of<S>() << " -> " << name_of<T>());
      const bool tree = ckpt::archive_traits<T>::caps.metadata_tree;
      const auto lib_out = path_for<T>(dir.path(), "lib-" + name_of<S>() + "-" + name_of<T>());
      const auto tool_out = path_for<T>(dir.path(), "tool-" + name_of<S>() + "-" + name_of<T>());
      const ckpt::StateDict want = tree ? loaded : tensors_only(loaded);
      bool library_can = true;
      try {
        ckpt::save_as<T>(lib_out, want);
      } catch (const ckpt::error&) {
        library_can = false;
      }
      const auto r = run({"convert", "--json", src.string(), tool_out.string(), "--format", name_of<T>()});
      INFO(r.out << r.err);
      if (!library_can) {  // the tool refuses what the backend cannot hold, and writes nothing
        ++refused;
        CHECK(r.rc == 2);
        CHECK(r.err_lines().size() == 1);
        CHECK(!std::filesystem::exists(tool_out));
        return;
      }
      ++converted;
      REQUIRE(r.rc == 0);
      const json j = r.json();
      CHECK(j.at("output").at("format") == name_of<T>());
      CHECK(j.at("tensors") == loaded.tensor_count());
      const ckpt::StateDict got = ckpt::load_as<T>(tool_out);
      CHECK(got == ckpt::load_as<T>(lib_out));
      for (const auto& [p, leaf] : loaded.flatten()) {
        if (!leaf->is_tensor()) continue;
        INFO("tensor " << p.str());
        const ckpt::StateDict* t = find_tensor(got, p);
        REQUIRE(t);
        CHECK(t->tensor() == leaf->tensor());  // dtype, shape and bytes
      }
      if (!tree && !j.at("dropped").at("values").empty()) CHECK(r.err.find("dropped") != std::string::npos);
    });
  });
  CHECK(converted > 0);
  CHECK(converted + refused == std::tuple_size_v<ckpt::builtin_formats> * std::tuple_size_v<ckpt::builtin_formats>);
}

TEST_CASE("convert picks the format from the extension and passes --codec") {
  ckpt_test::TempDir dir;
  ckpt::save(dir / "m.json", model());
  const auto r = run({"convert", (dir / "m.json").string(), (dir / "m.ckpt").string(), "--codec", "zlib"});
  REQUIRE(r.rc == 0);
  CHECK(ckpt::load(dir / "m.ckpt") == ckpt::load(dir / "m.json"));
  const auto info = run({"info", "--json", (dir / "m.ckpt").string()});
  REQUIRE(info.rc == 0);
  CHECK(info.json().at("format") == "native");
  CHECK(info.json().at("codecs").contains("zlib"));
}

TEST_CASE("ls and verify on a CheckpointManager directory") {
  ckpt_test::TempDir dir;
  const auto run_dir = dir / "run";
  write_manager_dir(run_dir, 3);
  const auto l = run({"ls", "--json", run_dir.string()});
  REQUIRE(l.rc == 0);
  const json j = l.json();
  CHECK(j.at("kind") == "manager");
  CHECK(j.at("latest_step") == 3);
  REQUIRE(j.at("checkpoints").size() == 3);
  for (int s = 1; s <= 3; ++s) {
    const json& c = j.at("checkpoints")[static_cast<std::size_t>(s - 1)];
    CHECK(c.at("step") == s);
    CHECK(c.at("metrics").at("loss").get<double>() == 1.0 / s);
    CHECK(c.at("latest") == (s == 3));
    CHECK(c.at("exists") == true);
    CHECK(std::filesystem::exists(run_dir / c.at("file").get<std::string>()));
  }
  const auto text = run({"ls", run_dir.string()});
  CHECK(text.rc == 0);
  CHECK(text.out.find("loss=") != std::string::npos);

  const auto good = run({"verify", "--json", run_dir.string()});
  REQUIRE(good.rc == 0);
  CHECK(good.json().at("ok") == true);
  CHECK(good.json().at("checkpoints").size() == 3);

  // Other commands name the latest checkpoint instead of guessing.
  const auto st = run({"stats", run_dir.string()});
  CHECK(st.rc == 2);
  CHECK(st.err_lines().size() == 1);
  CHECK(st.err.find(j.at("checkpoints")[2].at("file").get<std::string>()) != std::string::npos);

  const auto second = run_dir / j.at("checkpoints")[1].at("file").get<std::string>();
  flip_byte(second, native_offset(second, ckpt::KeyPath{"net", "w"}) + 1);
  const auto bad = run({"verify", "--json", run_dir.string()});
  REQUIRE(bad.rc == 1);
  const json bj = bad.json();
  CHECK(bj.at("ok") == false);
  CHECK(bj.at("first_bad").at("step") == 2);
  CHECK(bj.at("first_bad").at("key") == "net.w");
  CHECK(bj.at("checkpoints")[0].at("ok") == true);
  CHECK(bj.at("checkpoints")[2].at("ok") == true);
  CHECK(bad.err_lines().size() == 1);

  std::filesystem::remove(run_dir / j.at("checkpoints")[2].at("file").get<std::string>());
  const auto missing = run({"verify", "--json", run_dir.string()});
  CHECK(missing.rc == 1);
  CHECK(missing.json().at("checkpoints")[2].at("ok") == false);
}

TEST_CASE("verify on a CheckpointManager directory checks every file against the digest recorded at commit") {
  ckpt_test::TempDir dir;
  // JSON has no checksums of its own: one changed base64 character is caught by the digest.
  const auto run_dir = dir / "json";
  write_manager_dir(run_dir, 3, "json");
  const auto good = run({"verify", "--json", run_dir.string()});
  REQUIRE(good.rc == 0);
  const json gj = good.json();  // range-for over a temporary's member dangles before C++23
  for (const auto& c : gj.at("checkpoints")) {
    CHECK(c.at("digests") == "verified");
    CHECK(c.at("files") == 1);
    CHECK(c.at("contents_read") == true);
  }
  CHECK(run({"verify", run_dir.string()}).out.find("1 file(s) match the size and CRC-32 recorded at commit") != std::string::npos);
  const auto second = run_dir / "ckpt-2.json";
  {
    auto b = ckpt_test::read_bytes(second);
    const std::string text(b.begin(), b.end());
    const auto at = text.find("\"data\": \"") + 12;
    b[at] = b[at] == 'A' ? 'B' : 'A';
    ckpt_test::write_bytes(second, b);
  }
  const auto bad = run({"verify", "--json", run_dir.string()});
  REQUIRE(bad.rc == 1);
  const json bj = bad.json();
  CHECK(bj.at("first_bad").at("step") == 2);
  CHECK(bj.at("first_bad").at("reason").get<std::string>().find("checksum mismatch") != std::string::npos);
  CHECK(bj.at("checkpoints")[1].at("digests") == "mismatch");
  CHECK(bj.at("checkpoints")[0].at("ok") == true);
  CHECK(bj.at("checkpoints")[2].at("ok") == true);
  CHECK(bad.err_lines().size() == 1);
  CHECK(bad.err.find(second.string()) != std::string::npos);

  // A user's directory backend: the tool cannot read it, but checks its files by their digests.
  const auto raw_dir = dir / "rawdir";
  write_manager_dir(raw_dir, 2, ckpt::Backend::of<rawdir::format>());
  const auto rg = run({"verify", "--json", raw_dir.string()});
  REQUIRE(rg.rc == 0);
  const json rgj = rg.json();
  for (const auto& c : rgj.at("checkpoints")) {
    CHECK(c.at("digests") == "verified");
    CHECK(c.at("contents_read") == false);
    CHECK(c.at("format") == "rawdir");
    CHECK(c.at("files") == 2);  // t0.bin, index.json
  }
  CHECK(run({"verify", raw_dir.string()}).out.find("format 'rawdir' is not built into this tool") != std::string::npos);
  std::filesystem::remove(raw_dir / "ckpt-1.rawdir" / "t0.bin");
  const auto rb = run({"verify", "--json", raw_dir.string()});
  REQUIRE(rb.rc == 1);
  CHECK(rb.json().at("first_bad").at("step") == 1);
  CHECK(rb.json().at("first_bad").at("reason").get<std::string>().find("missing") != std::string::npos);
  CHECK(rb.err.find("t0.bin") != std::string::npos);

  // An index written before digests: what the format can check is checked, and the tool says so.
  const auto ip = run_dir / std::string(ckpt::ManagerIndex::file_name);
  auto doc = json::parse(std::string(ckpt_test::read_bytes(ip).data(), ckpt_test::read_bytes(ip).size()));
  for (auto& c : doc.at("checkpoints")) c.erase("files");
  const std::string text = doc.dump(1);
  ckpt_test::write_bytes(ip, std::vector<char>(text.begin(), text.end()));
  const auto old = run({"verify", "--json", run_dir.string()});
  CHECK(old.rc == 0);  // the changed JSON byte goes unnoticed: JSON has no checksums
  const json oj = old.json();
  for (const auto& c : oj.at("checkpoints")) CHECK(c.at("digests") == "none recorded");
  CHECK(run({"verify", run_dir.string()}).out.find("no digests recorded") != std::string::npos);
}
