// Unit tests for ckpt/checkpoint.hpp: tracking, save numbering and the save counter round
// trip, write without numbering, RestoreStatus for objects added and removed since the save
// (TF semantics) and for a file without a save counter (torch.save's), deferred restoration,
// the unused-values warning, nesting, and restores that fail before touching any object.
#include "ckpt_catch.hpp"
#include <ckpt/checkpoint.hpp>
#include <ckpt/ckpt.hpp>

#include "test_util.hpp"

using namespace ckpt;

namespace ct {
struct Model {
  std::vector<float> w = std::vector<float>(32, 0.0f);
  std::vector<float> b = std::vector<float>(4, 0.0f);
};
CKPT_FIELDS(Model, w, b)
struct Opt {
  std::int64_t step = 0;
  double lr = 0.1;
};
CKPT_FIELDS(Opt, step, lr)

inline void fill(Model& m, float v) {
  for (auto& x : m.w) x = v;
  for (auto& x : m.b) x = -v;
}
}  // namespace ct

namespace {
/// Collects ckpt::warn messages while alive.
struct WarningCapture {
  std::vector<std::string> messages;
  WarningCapture() {
    warning_handler() = [this](const std::string& m) { messages.push_back(m); };
  }
  ~WarningCapture() { warning_handler() = nullptr; }
};
}  // namespace

TEST_CASE("Checkpoint: save numbers files with the save counter, which round-trips", "[checkpoint]") {
  ckpt_test::TempDir dir;
  ct::Model model;
  ct::Opt opt;
  Checkpoint ck{{"model", model}, {"opt", opt}};
  CHECK(ck.names() == std::vector<std::string>{"model", "opt"});
  CHECK(ck.save_counter() == 0);
  ct::fill(model, 1.0f);
  const auto p1 = ck.save(dir / "run");
  ct::fill(model, 2.0f);
  opt.step = 7;
  const auto p2 = ck.save(dir / "run");
  CHECK(p1 == dir / "run-1.ckpt");
  CHECK(p2 == dir / "run-2.ckpt");
  CHECK(ck.save_counter() == 2);
  CHECK(load(p2).at("save_counter").get<std::int64_t>() == 2);

  ct::Model m2;
  ct::Opt o2;
  Checkpoint ck2{{"model", m2}, {"opt", o2}};
  auto st = ck2.restore(p2);
  st.assert_consumed();
  CHECK(st.consumed());
  CHECK(ck2.save_counter() == 2);
  CHECK(m2.w == model.w);
  CHECK(o2.step == 7);
  CHECK(ck2.save(dir / "run") == dir / "run-3.ckpt");  // numbering continues after a restore

  // restoring an older file brings its counter back
  ck2.restore(p1).assert_consumed();
  CHECK(ck2.save_counter() == 1);
  CHECK(m2.w[0] == 1.0f);
}

TEST_CASE("Checkpoint: write() uses the exact path and leaves the counter, format from options", "[checkpoint]") {
  ckpt_test::TempDir dir;
  ct::Model model;
  Checkpoint ck;
  ck.track("model", model);
  CHECK(ck.write(dir / "exact.ckpt") == dir / "exact.ckpt");
  CHECK(ck.save_counter() == 0);
  CHECK(std::filesystem::exists(dir / "exact.ckpt"));
  SaveOptions jo;
  jo.format = "json";
  CHECK(ck.save(dir / "j", jo) == dir / "j-1.json");
  CHECK(sniff_format(dir / "j-1.json") == "json");
  // a failed save does not consume a number
  CHECK_THROWS_AS(ck.save(dir / "no-such-dir" / "x"), io_error);
  CHECK(ck.save_counter() == 1);
}

TEST_CASE("Checkpoint: tracking rejects empty, duplicate and reserved names", "[checkpoint]") {
  ct::Model a, b;
  Checkpoint ck;
  ck.track("model", a);
  CHECK_THROWS_AS(ck.track("model", b), key_error);
  CHECK_THROWS_AS(ck.track("save_counter", b), key_error);
  CHECK_THROWS_AS(ck.track("", b), key_error);
  CHECK(ck.tracks("model"));
  CHECK_FALSE(ck.tracks("other"));
}

TEST_CASE("RestoreStatus: an object added since the save", "[checkpoint][status]") {
  ckpt_test::TempDir dir;
  ct::Model model;
  ct::fill(model, 3.0f);
  Checkpoint old_ck{{"model", model}};
  const auto p = old_ck.save(dir / "c");

  ct::Model m2;
  ct::Opt added;
  added.lr = 0.5;
  Checkpoint ck{{"model", m2}, {"opt", added}};
  auto st = ck.restore(p);
  CHECK(m2.w == model.w);      // what exists in both is restored
  CHECK(added.lr == 0.5);      // the new object keeps its initial values
  CHECK(st.unmatched() == std::vector<std::string>{"opt"});
  CHECK(st.unused().empty());
  CHECK_FALSE(st.consumed());
  CHECK_FALSE(st.existing_objects_matched());
  CHECK_NOTHROW(st.assert_nontrivial_match());
  try {
    st.assert_consumed();
    FAIL("assert_consumed passed");
  } catch (const key_error& e) {
    CHECK(e.path() == p.string());
    CHECK(std::string(e.what()).find("tracked values the file did not provide: opt") != std::string::npos);
  }
  CHECK_THROWS_AS(st.assert_existing_objects_matched(), key_error);
  CHECK(st.report().missing == std::vector<std::string>{"opt"});
}

TEST_CASE("RestoreStatus: an object removed since the save, warning unless expect_partial", "[checkpoint][status]") {
  ckpt_test::TempDir dir;
  ct::Model model;
  ct::Opt opt;
  opt.step = 11;
  ct::fill(model, 4.0f);
  Checkpoint old_ck{{"model", model}, {"opt", opt}};
  const auto p = old_ck.save(dir / "c");

  WarningCapture warnings;
  {
    ct::Model m2;
    Checkpoint ck{{"model", m2}};
    auto st = ck.restore(p);
    CHECK(st.existing_objects_matched());
    CHECK_NOTHROW(st.assert_existing_objects_matched());
    CHECK(st.unused() == std::vector<std::string>{"opt.step", "opt.lr"});
    CHECK(st.report().unexpected == st.unused());
    CHECK_THROWS_AS(st.assert_consumed(), key_error);
    CHECK(m2.w == model.w);
  }  // the status and the checkpoint go away with values unused: one warning
  REQUIRE(warnings.messages.size() == 1);
  CHECK(warnings.messages[0].find("opt.step") != std::string::npos);
  CHECK(warnings.messages[0].find(p.string()) != std::string::npos);
  CHECK(warnings.messages[0].find("expect_partial") != std::string::npos);

  warnings.messages.clear();
  {
    ct::Model m2;
    Checkpoint ck{{"model", m2}};
    ck.restore(p).expect_partial();
    CHECK_THROWS_AS(ck.restore(p).expect_partial().assert_consumed(), key_error);  // silences, does not pass
  }
  CHECK(warnings.messages.empty());
}

TEST_CASE("RestoreStatus: an object tracked after the restore is restored then (deferred)", "[checkpoint][status]") {
  ckpt_test::TempDir dir;
  ct::Model model;
  ct::Opt opt;
  opt.step = 5;
  opt.lr = 0.25;
  Checkpoint old_ck{{"model", model}, {"opt", opt}};
  const auto p = old_ck.save(dir / "c");

  ct::Model m2;
  ct::Opt late;
  Checkpoint ck{{"model", m2}};
  auto st = ck.restore(p);
  CHECK_FALSE(st.consumed());
  ck.track("opt", late);
  CHECK(late.step == 5);
  CHECK(late.lr == 0.25);
  CHECK(st.consumed());
  st.assert_consumed();
  // an object with no values in the file, tracked later, makes existing objects unmatched
  ct::Opt extra;
  ck.track("extra", extra);
  CHECK_THROWS_AS(st.assert_existing_objects_matched(), key_error);
}

TEST_CASE("RestoreStatus: a missing leaf inside an object, nontrivial match, mismatches", "[checkpoint][status]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["save_counter"] = 3;
  sd["model"].set("w", Tensor(DType::f32, {32}));  // no "b"
  save(dir / "partial.ckpt", sd);
  ct::Model m;
  Checkpoint ck{{"model", m}};
  auto st = ck.restore(dir / "partial.ckpt");
  CHECK(st.unmatched() == std::vector<std::string>{"model.b"});
  CHECK(st.restored_objects() == std::vector<std::string>{"save_counter", "model"});

  StateDict only_counter;
  only_counter["save_counter"] = 1;
  only_counter["something_else"] = 2;
  save(dir / "trivial.ckpt", only_counter);
  auto st2 = ck.restore(dir / "trivial.ckpt").expect_partial();
  CHECK_THROWS_AS(st2.assert_nontrivial_match(), key_error);

  StateDict wrong;
  wrong["save_counter"] = 1;
  wrong["model"].set("w", Tensor(DType::f64, {32}));  // vectors resize; the dtype must match
  wrong["model"].set("b", Tensor(DType::f32, {4}));
  save(dir / "wrong.ckpt", wrong);
  try {
    ck.restore(dir / "wrong.ckpt");
    FAIL("mismatch not detected");
  } catch (const mismatch_error& e) {
    CHECK(e.key() == "model.w");
    CHECK(e.path() == (dir / "wrong.ckpt").string());
  }
  LoadOptions skip;
  skip.skip_mismatched = true;
  auto st3 = ck.restore(dir / "wrong.ckpt", skip);
  REQUIRE(st3.unmatched().size() == 1);
  CHECK(st3.unmatched()[0].rfind("model.w (expected", 0) == 0);
  CHECK_THROWS_AS(st3.assert_existing_objects_matched(), key_error);
}

TEST_CASE("RestoreStatus: a file without save_counter (torch.save's) matches when its objects do", "[checkpoint][status]") {
  ckpt_test::TempDir dir;
  StateDict sd;  // what torch.save({"model": ..., "opt": ...}) holds: no save_counter
  sd["model"].set("w", Tensor(DType::f32, {32}));
  sd["model"].set("b", Tensor::from<float>({1, 2, 3, 4}));
  sd["opt"]["step"] = 5;
  sd["opt"]["lr"] = 0.5;
  save(dir / "no_counter.ckpt", sd);
  ct::Model model;
  ct::Opt opt;
  Checkpoint ck{{"model", model}, {"opt", opt}};
  ck.save(dir / "own");  // the counter is 1 and stays so: the file has none to restore
  auto st = ck.restore(dir / "no_counter.ckpt");
  CHECK(st.unmatched().empty());
  CHECK(st.unused().empty());
  st.assert_existing_objects_matched().assert_consumed().assert_nontrivial_match();
  CHECK(st.restored_objects() == std::vector<std::string>{"model", "opt"});
  CHECK(model.b[3] == 4.0f);
  CHECK(opt.step == 5);
  CHECK(ck.save_counter() == 1);
  CHECK(ck.save(dir / "own") == dir / "own-2.ckpt");
}

TEST_CASE("Checkpoint: a corrupt file throws before any object changes", "[checkpoint]") {
  ckpt_test::TempDir dir;
  ct::Model model;
  ct::fill(model, 1.5f);
  Checkpoint ck{{"model", model}};
  const auto p = ck.save(dir / "c");
  auto bytes = ckpt_test::read_bytes(p);
  bytes[64 + 5] ^= 0x01;  // inside the first tensor's data
  ckpt_test::write_bytes(p, bytes);
  ct::fill(model, 9.0f);
  CHECK_THROWS_AS(ck.restore(p), corrupt_error);
  CHECK(model.w[0] == 9.0f);
  CHECK(model.b[0] == -9.0f);
  CHECK(ck.save_counter() == 1);
}

TEST_CASE("Checkpoint: nesting, and use as a plain Checkpointable", "[checkpoint]") {
  ckpt_test::TempDir dir;
  ct::Model model;
  ct::Opt opt;
  ct::fill(model, 2.5f);
  opt.step = 3;
  Checkpoint inner{{"opt", opt}};
  Checkpoint outer{{"model", model}, {"training", inner}};
  const auto p = outer.save(dir / "n");
  CHECK(load(p).at("training.opt.step").get<int>() == 3);

  ct::Model m2;
  ct::Opt o2;
  Checkpoint inner2{{"opt", o2}};
  Checkpoint outer2{{"model", m2}, {"training", inner2}};
  outer2.restore(p).assert_consumed();
  CHECK(o2.step == 3);
  CHECK(m2.w == model.w);

  // Checkpoint is Checkpointable: ckpt::save / load_into work on it directly
  STATIC_REQUIRE(Checkpointable<Checkpoint>);
  save(dir / "plain.ckpt", outer);
  ct::Model m3;
  ct::Opt o3;
  Checkpoint inner3{{"opt", o3}};
  Checkpoint outer3{{"model", m3}, {"training", inner3}};
  CHECK(load_into(dir / "plain.ckpt", outer3).ok());
  CHECK(o3.step == 3);
}
