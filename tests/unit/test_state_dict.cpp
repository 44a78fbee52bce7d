// Unit tests for ckpt/state_dict.hpp: key paths and escaping, dotted keys vs nesting, ordered
// iteration, flatten/unflatten, equality, LoadReport.
#include "ckpt_catch.hpp"
#include <ckpt/state_dict.hpp>

using namespace ckpt;

TEST_CASE("key paths escape dots and backslashes and parse back", "[state_dict][path]") {
  KeyPath p{"model", "0.weight", "a\\b"};
  CHECK(p.str() == "model.0\\.weight.a\\\\b");
  CHECK(KeyPath::parse(p.str()) == p);
  CHECK(p.joined() == "model.0.weight.a\\b");
  CHECK(KeyPath::parse("a.b.c").keys() == std::vector<std::string>{"a", "b", "c"});
  CHECK(KeyPath::parse("").empty());
  CHECK(KeyPath::parse("a..b").keys() == std::vector<std::string>{"a", "", "b"});
}

TEST_CASE("a dotted key stays distinct from nesting", "[state_dict]") {
  StateDict flat;  // PyTorch module state dict shape
  flat.set("0.weight", Tensor::from<float>({1, 2}));
  StateDict nested;  // the same words as nesting
  nested["0.weight"] = Tensor::from<float>({1, 2});
  CHECK(flat.keys() == std::vector<std::string>{"0.weight"});
  CHECK(nested.keys() == std::vector<std::string>{"0"});
  CHECK_FALSE(flat == nested);
  CHECK(flat.contains("0\\.weight"));
  CHECK_FALSE(flat.contains("0.weight"));
  CHECK(nested.contains("0.weight"));
  CHECK(flat.flatten()[0].first.str() == "0\\.weight");
  CHECK(nested.flatten()[0].first.str() == "0.weight");
}

TEST_CASE("insertion order, access, erase, kinds", "[state_dict]") {
  StateDict sd;
  sd["z"] = 1;
  sd["a.b"] = "text";
  sd["m"] = Tensor::from<double>({1.5});
  sd["a.c"] = true;
  CHECK(sd.keys() == std::vector<std::string>{"z", "a", "m"});
  CHECK(sd.at("a").keys() == std::vector<std::string>{"b", "c"});
  CHECK(sd.at("z").get<int>() == 1);
  CHECK(sd.at("a.b").get<std::string>() == "text");
  CHECK(sd.at("m").is_tensor());
  CHECK_THROWS_AS(sd.at("a.nope"), key_error);
  try {
    (void)sd.at("a.nope.deeper");
    FAIL();
  } catch (const key_error& e) {
    CHECK(e.key() == "a.nope");
  }
  CHECK_THROWS_AS(sd.at("z.x"), key_error);  // a leaf has no children
  CHECK_THROWS_AS(sd.at("m").value(), mismatch_error);
  CHECK(sd.erase("z"));
  CHECK_FALSE(sd.erase("z"));
  CHECK(sd.keys() == std::vector<std::string>{"a", "m"});
  CHECK(sd.at("m").is_tensor());  // index rebuilt after erase
  sd.set("a", 5);                 // replace keeps position
  CHECK(sd.keys() == std::vector<std::string>{"a", "m"});
  CHECK(sd.tensor_count() == 1);
  CHECK(sd.tensor_bytes() == 8);
}

TEST_CASE("flatten and unflatten are inverse, copies are deep for the tree", "[state_dict]") {
  StateDict sd;
  sd["model.w"] = Tensor::from<float>({1, 2, 3});
  sd["opt.state.0.step"] = 4;
  sd["opt.lr"] = 0.01;
  std::vector<std::pair<KeyPath, StateDict>> leaves;
  for (const auto& [p, v] : sd.flatten()) leaves.emplace_back(p, *v);
  CHECK(leaves.size() == 3);
  CHECK(StateDict::unflatten(leaves) == sd);

  StateDict copy = sd;
  copy["opt.lr"] = 0.5;
  CHECK(sd.at("opt.lr").get<double>() == 0.01);
  CHECK_FALSE(copy == sd);
  copy["opt.lr"] = 0.01;
  CHECK(copy == sd);
  copy.at("opt").set_container(Container::int_dict);
  CHECK_FALSE(copy == sd);  // the container kind is part of equality
}

TEST_CASE("LoadReport merges with prefixes and summarises", "[state_dict]") {
  LoadReport inner;
  inner.missing = {"weight"};
  inner.unexpected = {"extra"};
  LoadReport outer;
  outer.merge(inner, KeyPath{"model"});
  CHECK(outer.missing == std::vector<std::string>{"model.weight"});
  CHECK(outer.summary() == "missing: model.weight; unexpected: model.extra");
  CHECK_FALSE(outer.ok());
  CHECK(LoadReport{}.ok());
}
