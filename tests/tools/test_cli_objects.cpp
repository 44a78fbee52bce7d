// The ckpt tool on .pt files that hold Python objects (issue 16): without --inert-objects every
// command that reads the file refuses it (exit 2, one line naming the global and the flag);
// with it `ls` / `info` show the objects (class and abbreviated fields) next to the tensors,
// `stats` / `verify` / `diff` work through them, `convert` writes back what round-trips and
// names what it dropped — and the os.system payload in the file never runs.
#include "ckpt_catch.hpp"

#include "pt_file.hpp"
#include "tool_runner.hpp"

using namespace tool_test;
using nlohmann::json;

TEST_CASE("objects need --inert-objects: refused without it naming the global and the flag, every reading command with it, nothing runs") {
  ckpt_test::TempDir dir;
  const auto p = dir / "objects.pt", marker = dir / "ran";
  pt_test::write_objects_file(p, marker);
  for (const std::string cmd : {"ls", "info", "stats", "verify"}) {
    INFO(cmd);
    const auto r = run({cmd, p.string()});
    CHECK(r.rc == (cmd == "verify" ? 1 : 2));  // verify: a file it cannot read is bad
    REQUIRE_FALSE(r.err_lines().empty());
    CHECK_THAT(r.err_lines().back(), ckpt_test::Contains("'torch.nn.modules.linear.Linear'") && ckpt_test::Contains("--inert-objects"));
    const auto ok = run({cmd, "--inert-objects", p.string()});
    INFO(ok.err);
    CHECK(ok.rc == 0);
  }
  CHECK(run({"diff", p.string(), p.string()}).rc == 2);
  CHECK(run({"diff", "--inert-objects", p.string(), p.string()}).rc == 0);
  CHECK(run({"convert", p.string(), (dir / "x.safetensors").string()}).rc == 2);
  const auto f = run({"formats", "--inert-objects"});
  CHECK(f.rc == 2);
  CHECK_THAT(f.err, ckpt_test::Contains("--inert-objects applies to commands that read a checkpoint"));
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("ls and info show the objects: class, abbreviated fields, tensors inside listed") {
  ckpt_test::TempDir dir;
  const auto p = dir / "objects.pt", marker = dir / "ran";
  pt_test::write_objects_file(p, marker);
  const auto ls = run({"ls", "--json", "--inert-objects", p.string()});
  REQUIRE(ls.rc == 0);
  const json j = ls.json();
  const json w = find_key(j.at("entries"), "model.$state._parameters.weight");
  REQUIRE(w.is_object());
  CHECK(w.at("dtype") == "f32");
  CHECK(w.at("shape") == json::array({1, 2}));
  CHECK(w.at("keys") == json::array({"model", "$state", "_parameters", "weight"}));
  const json& objs = j.at("objects");
  REQUIRE(objs.size() == 3);
  CHECK(objs[0].at("key") == "model");
  CHECK(objs[0].at("class") == "torch.nn.modules.linear.Linear");
  CHECK_THAT(objs[0].at("summary").get<std::string>(),
             ckpt_test::Contains("_parameters={weight: f32[1, 2], bias: f32[1]}") && ckpt_test::Contains("in_features=2"));
  CHECK_THAT(objs[0].at("summary").get<std::string>(), !ckpt_test::Contains("_buffers"));  // empty fields left out
  CHECK(objs[1].at("class") == "argparse.Namespace");
  CHECK(objs[1].at("summary") == "lr=0.5, name=\"x\"");
  CHECK(objs[2].at("key") == "evil");
  CHECK(objs[2].at("class") == "os.system");
  CHECK_THAT(objs[2].at("summary").get<std::string>(), ckpt_test::Contains("args=[\"touch "));
  CHECK(find_key(j.at("values"), "args").at("value") == json::parse(R"({"$class": "argparse.Namespace", "$state": {"lr": 0.5, "name": "x"}})"));

  const auto text = run({"ls", "--inert-objects", p.string()});
  REQUIRE(text.rc == 0);
  CHECK_THAT(text.out, ckpt_test::Contains("2 tensors") && ckpt_test::Contains("3 objects"));
  CHECK_THAT(text.out, ckpt_test::Contains("objects:\n") && ckpt_test::Contains("args   argparse.Namespace"));
  CHECK_THAT(text.out, ckpt_test::Contains("metadata:\n  step  =  7"));
  CHECK_THAT(text.out, !ckpt_test::Contains("in_features  ="));  // shown with its object, not as metadata

  const auto info = run({"info", "--json", "--inert-objects", p.string()});
  REQUIRE(info.rc == 0);
  CHECK(info.json().at("objects") == 3);
  CHECK(info.json().at("classes") == json::parse(R"({"argparse.Namespace": 1, "os.system": 1, "torch.nn.modules.linear.Linear": 1})"));
  const auto info_text = run({"info", "--inert-objects", p.string()});
  CHECK_THAT(info_text.out, ckpt_test::Contains("objects:    3 (argparse.Namespace x1, os.system x1, torch.nn.modules.linear.Linear x1)"));
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("convert through safetensors and back to .pt names the objects it cannot write back, diff finds the trees equal") {
  ckpt_test::TempDir dir;
  const auto p = dir / "objects.pt", marker = dir / "ran";
  pt_test::write_objects_file(p, marker);
  const auto mid = dir / "mid.safetensors", back = dir / "back.pt", direct = dir / "direct.pt";
  const auto c1 = run({"convert", "--inert-objects", p.string(), mid.string()});
  INFO(c1.err);
  REQUIRE(c1.rc == 0);
  CHECK(c1.err.empty());  // safetensors keeps the whole tree (records included) in its metadata
  const auto c2 = run({"convert", "--json", mid.string(), back.string()});
  REQUIRE(c2.rc == 0);
  CHECK(c2.json().at("dropped").at("objects") == json::array({"model (torch.nn.modules.linear.Linear)", "evil (os.system)"}));
  REQUIRE(c2.err_lines().size() == 1);
  CHECK_THAT(c2.err_lines()[0], ckpt_test::Contains("ckpt: note: pt cannot write 2 objects back") &&
                                    ckpt_test::Contains("model (torch.nn.modules.linear.Linear), evil (os.system)"));
  const auto c3 = run({"convert", "--inert-objects", p.string(), direct.string()});
  REQUIRE(c3.rc == 0);
  CHECK_THAT(c3.err, ckpt_test::Contains("2 objects"));
  for (const auto& f : {mid, back, direct}) {
    INFO(f.string());
    const auto d = run({"diff", "--inert-objects", p.string(), f.string()});
    INFO(d.out);
    CHECK(d.rc == 0);
  }
  // the plain dicts are plain: only the Namespace (written back as itself) needs the flag
  CHECK_THAT(run({"ls", back.string()}).err, ckpt_test::Contains("'argparse.Namespace'"));
  const auto st = run({"stats", "--json", "--inert-objects", back.string(), "model"});
  REQUIRE(st.rc == 0);
  CHECK(st.json().at("tensors").size() == 2);
  CHECK_FALSE(std::filesystem::exists(marker));
}
