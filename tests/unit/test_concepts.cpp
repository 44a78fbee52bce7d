// Unit tests for ckpt/concepts.hpp and the built-in Checkpointables: the three routes
// (members, ADL, traits), CKPT_FIELDS, containers, optional, random engines, strict and
// non-strict loads, mismatch errors with key paths.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <map>
#include <random>
#include <unordered_map>

#include "test_util.hpp"

using namespace ckpt;

namespace user {
// (a) members, the PyTorch shape
struct Linear {
  std::vector<float> weight = std::vector<float>(6, 0.5f);
  std::vector<float> bias = std::vector<float>(2, 0.0f);
  StateDict state_dict() const {
    StateDict sd;
    sd.set("weight", StateDict(Tensor::borrow({DType::f32, {2, 3}, reinterpret_cast<const std::byte*>(weight.data()), weight.size() * 4})));
    sd.set("bias", to_state_dict(bias));
    return sd;
  }
  LoadReport load_state_dict(const StateDict& sd, const LoadOptions& o) {
    LoadReport r;
    expect_dict(sd, "Linear");
    if (const StateDict* w = sd.find_key("weight")) {
      const Shape want{2, 3};
      try {
        check_assignable(w->tensor(), DType::f32, &want);
      } catch (const mismatch_error& e) {
        rethrow_with_prefix(e, KeyPath{"weight"});
      }
      std::memcpy(weight.data(), w->tensor().data(), 24);
    } else {
      r.missing.push_back("weight");
    }
    load_child(sd, "bias", bias, o, r);
    report_unexpected(sd, {"weight", "bias"}, r);
    return r;
  }
};
// (b) ADL free functions
struct Counter {
  int count = 0;
};
StateDict state_dict(const Counter& c) { return StateDict(c.count); }
LoadReport load_state_dict(Counter& c, const StateDict& sd, const LoadOptions& o) { return ckpt::load_state_dict(c.count, sd, o); }
// (c) traits, for a type "we do not own"
struct Foreign {
  std::string tag;
};
// CKPT_FIELDS for an aggregate
struct TrainState {
  int epoch = 0;
  double loss = 0;
  std::string note;
  std::vector<double> history;
  std::optional<int> best_epoch;
  std::map<std::string, float> metrics;
};
CKPT_FIELDS(TrainState, epoch, loss, note, history, best_epoch, metrics)
struct Outer {
  Linear linear;
  TrainState train;
};
CKPT_FIELDS(Outer, linear, train)
}  // namespace user

template <>
struct ckpt::checkpoint_traits<user::Foreign> {
  static StateDict state_dict(const user::Foreign& f) { return StateDict(f.tag); }
  static LoadReport load_state_dict(user::Foreign& f, const StateDict& sd, const LoadOptions& o) { return ckpt::load_state_dict(f.tag, sd, o); }
};

struct NotCheckpointable {};

TEST_CASE("the three routes and CKPT_FIELDS satisfy Checkpointable", "[concepts]") {
  STATIC_REQUIRE(Checkpointable<user::Linear>);
  STATIC_REQUIRE(Checkpointable<user::Counter>);
  STATIC_REQUIRE(Checkpointable<user::Foreign>);
  STATIC_REQUIRE(Checkpointable<user::TrainState>);
  STATIC_REQUIRE(Checkpointable<int>);
  STATIC_REQUIRE(Checkpointable<std::string>);
  STATIC_REQUIRE(Checkpointable<std::vector<float>>);
  STATIC_REQUIRE(Checkpointable<std::array<double, 3>>);
  STATIC_REQUIRE(Checkpointable<std::map<std::string, user::Linear>>);
  STATIC_REQUIRE(Checkpointable<std::unordered_map<std::string, int>>);
  STATIC_REQUIRE(Checkpointable<std::map<int, std::vector<float>>>);
  STATIC_REQUIRE(Checkpointable<std::optional<double>>);
  STATIC_REQUIRE(Checkpointable<std::mt19937_64>);
  STATIC_REQUIRE(Checkpointable<std::vector<user::Linear>>);
  STATIC_REQUIRE(!Checkpointable<std::vector<NotCheckpointable>>);
  STATIC_REQUIRE(!Checkpointable<NotCheckpointable>);
}

TEST_CASE("an object graph round-trips through a file and restores exactly", "[concepts]") {
  ckpt_test::TempDir dir;
  user::Outer a;
  a.linear.weight = {1, 2, 3, 4, 5, 6};
  a.linear.bias = {-1, 1};
  a.train = {7, 0.125, "warmup", {3.5, 2.25}, 5, {{"acc", 0.5f}}};
  save(dir / "x.ckpt", a);

  user::Outer b;
  LoadReport r = load_into(dir / "x.ckpt", b);
  CHECK(r.ok());
  CHECK(b.linear.weight == a.linear.weight);
  CHECK(b.linear.bias == a.linear.bias);
  CHECK(b.train.epoch == 7);
  CHECK(b.train.loss == 0.125);
  CHECK(b.train.note == "warmup");
  CHECK(b.train.history == a.train.history);
  CHECK(b.train.best_epoch == 5);
  CHECK(b.train.metrics == a.train.metrics);

  StateDict sd = load(dir / "x.ckpt");
  CHECK(sd.at("linear.weight").tensor().shape() == Shape{2, 3});
  CHECK(sd.at("train.epoch").get<int>() == 7);
}

TEST_CASE("strict load lists every missing and unexpected key, non-strict reports them", "[concepts]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["epoch"] = 3;
  sd["note"] = "x";
  sd["extra.deep"] = 1;
  sd["surplus"] = 2;
  save(dir / "s.ckpt", sd);
  user::TrainState t;
  try {
    load_into(dir / "s.ckpt", t);
    FAIL("strict load did not throw");
  } catch (const key_error& e) {
    const std::string m = e.what();
    CHECK(m.find("missing: loss, history, best_epoch, metrics") != std::string::npos);
    CHECK(m.find("unexpected: extra.deep, surplus") != std::string::npos);
    CHECK(e.path() == (dir / "s.ckpt").string());
  }
  LoadOptions lax;
  lax.strict = false;
  LoadReport r = load_into(dir / "s.ckpt", t, lax);
  CHECK(r.missing == std::vector<std::string>{"loss", "history", "best_epoch", "metrics"});
  CHECK(r.unexpected == std::vector<std::string>{"extra.deep", "surplus"});
  CHECK(t.epoch == 3);  // what matched was loaded
}

TEST_CASE("a shape mismatch names the key path, expected and got", "[concepts]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["linear.weight"] = Tensor(DType::f32, {3, 3});
  sd["linear.bias"] = Tensor(DType::f32, {2});
  sd["train"] = to_state_dict(user::TrainState{});
  save(dir / "m.ckpt", sd);
  user::Outer o;
  try {
    load_into(dir / "m.ckpt", o);
    FAIL("no mismatch_error");
  } catch (const mismatch_error& e) {
    CHECK(e.key() == "linear.weight");
    CHECK(e.expected() == "[2, 3]");
    CHECK(e.got() == "[3, 3]");
    CHECK(e.path() == (dir / "m.ckpt").string());
    CHECK(std::string(e.what()).find("'linear.weight': expected [2, 3], got [3, 3]") != std::string::npos);
  }
  // dtype mismatch deeper down, through load_child
  sd["linear.weight"] = Tensor(DType::f32, {2, 3});
  sd["linear.bias"] = Tensor(DType::f64, {2});
  save(dir / "m.ckpt", sd);
  try {
    load_into(dir / "m.ckpt", o);
    FAIL("no mismatch_error");
  } catch (const mismatch_error& e) {
    CHECK(e.key() == "linear.bias");
    CHECK(e.expected() == "f32");
    CHECK(e.got() == "f64");
  }
  LoadOptions skip;
  skip.skip_mismatched = true;
  LoadReport r = load_into(dir / "m.ckpt", o, skip);
  REQUIRE(r.mismatched.size() == 1);
  CHECK(r.mismatched[0] == "linear.bias (expected f32, got f64)");
}

TEST_CASE("maps with int keys keep an int_dict container, vectors of objects are lists", "[concepts]") {
  std::map<int, std::vector<float>> state{{0, {1, 2}}, {1, {3}}};
  StateDict sd = to_state_dict(state);
  CHECK(sd.container() == Container::int_dict);
  CHECK(sd.keys() == std::vector<std::string>{"0", "1"});
  std::map<int, std::vector<float>> back;
  CHECK(load_state_dict(back, sd).ok());
  CHECK(back == state);

  std::vector<user::Counter> layers{{1}, {2}, {3}};
  StateDict l = to_state_dict(layers);
  CHECK(l.container() == Container::list);
  std::vector<user::Counter> lb;
  load_state_dict(lb, l);
  REQUIRE(lb.size() == 3);
  CHECK(lb[2].count == 3);

  std::optional<double> none;
  CHECK(to_state_dict(none).value().is_null());
  std::optional<double> some = 2.0;
  load_state_dict(some, to_state_dict(none));
  CHECK_FALSE(some.has_value());
}

TEST_CASE("integers are exact, out-of-range values and wrong kinds are mismatches", "[concepts]") {
  std::int64_t big = std::numeric_limits<std::int64_t>::min();
  std::int64_t back = 0;
  load_state_dict(back, to_state_dict(big));
  CHECK(back == big);
  std::uint64_t ubig = std::numeric_limits<std::uint64_t>::max(), uback = 0;
  load_state_dict(uback, to_state_dict(ubig));
  CHECK(uback == ubig);
  std::int8_t small = 0;
  CHECK_THROWS_AS(load_state_dict(small, StateDict(300)), mismatch_error);
  int i = 0;
  CHECK_THROWS_AS(load_state_dict(i, StateDict("three")), mismatch_error);
  CHECK_THROWS_AS(load_state_dict(i, StateDict(2.5)), mismatch_error);
  // A stored double beyond float's range: converting it would be undefined, so it is refused.
  float f = 0;
  CHECK_THROWS_WITH(load_state_dict(f, StateDict(1e300)), ckpt_test::Contains("number out of range"));
  load_state_dict(f, StateDict(2.5));
  CHECK(f == 2.5f);
  double d = 0;
  load_state_dict(d, StateDict(1e300));
  CHECK(d == 1e300);
  double nan_back = 0;
  load_state_dict(nan_back, to_state_dict(std::numeric_limits<double>::quiet_NaN()));  // 0-d tensor route
  CHECK(std::isnan(nan_back));
}

template <class Engine>
void check_engine_round_trip() {
  ckpt_test::TempDir dir;
  Engine e(12345);
  e.discard(1000);
  save(dir / "rng.ckpt", e);
  Engine r;
  load_into(dir / "rng.ckpt", r);
  for (int i = 0; i < 100; ++i) REQUIRE(e() == r());
}

TEST_CASE("every standard random engine's state round-trips exactly", "[concepts][random]") {
  check_engine_round_trip<std::minstd_rand0>();
  check_engine_round_trip<std::minstd_rand>();
  check_engine_round_trip<std::mt19937>();
  check_engine_round_trip<std::mt19937_64>();
  check_engine_round_trip<std::ranlux24_base>();
  check_engine_round_trip<std::ranlux48_base>();
  check_engine_round_trip<std::ranlux24>();
  check_engine_round_trip<std::ranlux48>();
  check_engine_round_trip<std::knuth_b>();
  check_engine_round_trip<std::default_random_engine>();
  check_engine_round_trip<std::independent_bits_engine<std::mt19937, 17, std::uint32_t>>();
}

TEST_CASE("normal_distribution's cached value is saved", "[concepts][random]") {
  std::mt19937 g(1);
  std::normal_distribution<double> d;
  (void)d(g);  // now one value is cached inside d
  StateDict sd;
  sd.set("g", to_state_dict(g));
  sd.set("d", to_state_dict(d));
  std::mt19937 g2;
  std::normal_distribution<double> d2;
  load_state_dict(g2, sd.at("g"));
  load_state_dict(d2, sd.at("d"));
  for (int i = 0; i < 10; ++i) REQUIRE(d(g) == d2(g2));
}
