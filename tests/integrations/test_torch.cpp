// Tests of include/ckpt/integrations/torch.hpp against the real libtorch (C++ side only; the
// Python side is tests/interop/torch_integration.py): at::Tensor of every dtype libtorch and
// ckpt share, borrowed vs copied saves, 0-d and non-contiguous tensors, in-place loads and
// mismatches naming the key, mmap views; modules in Python's state_dict order, strict and
// all-or-nothing loads, safetensors; the five optimizers (and their variants) resumed exactly
// through a CheckpointManager in the native format; Python-written optimizer state dicts and
// the Python-only keys libtorch cannot honour. CUDA is not exercised (no GPU here).
#include <ckpt/integrations/torch.hpp>
// Debian's libtorch logs through glog, whose CHECK macro would replace Catch2's: drop it
// before Catch2 defines its own.
#undef CHECK
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "test_util.hpp"

using ckpt::DType;
using ckpt::LoadOptions;
using ckpt::StateDict;

namespace {

struct NetImpl : torch::nn::Module {
  // BatchNorm before Conv inside the Sequential: Python's order (per module: parameters,
  // buffers, children) differs from libtorch's named_parameters() then named_buffers().
  NetImpl()
      : features(register_module("features", torch::nn::Sequential(torch::nn::BatchNorm2d(1),
                                                                   torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 3, 3).bias(false)),
                                                                   torch::nn::BatchNorm2d(3)))),
        head(register_module("head", torch::nn::Linear(3 * 4 * 4, 2))) {
    scale = register_parameter("scale", torch::ones({1}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head(torch::relu(features->forward(x)).flatten(1)) * scale; }
  torch::nn::Sequential features;
  torch::nn::Linear head;
  torch::Tensor scale;
};
TORCH_MODULE(Net);

Net make_net(std::uint64_t seed) {
  torch::manual_seed(seed);
  return Net();
}

/// The state of a module or optimizer as ckpt sees it (viewing the live tensors), for exact
/// comparisons.
StateDict state_of(const auto& x) { return ckpt::to_state_dict(x); }

/// A copy whose tensors own their bytes (a snapshot of borrowed ones).
StateDict snapshot(const StateDict& s) {
  std::vector<std::pair<ckpt::KeyPath, StateDict>> leaves;
  for (const auto& [p, leaf] : s.flatten()) leaves.emplace_back(p, leaf->is_tensor() ? StateDict(leaf->tensor().clone()) : *leaf);
  return StateDict::unflatten(leaves);
}

/// A deterministic tensor of `st` with 12 elements, shape [3, 4].
torch::Tensor sample(c10::ScalarType st) {
  auto base = torch::arange(12, torch::kDouble).reshape({3, 4});
  if (st == torch::kBool) return (base.remainder(3) == 0);
  if (st == torch::kComplexFloat || st == torch::kComplexDouble) return torch::complex(base - 5, 0.5 * base).to(st);
  if (c10::isFloatingType(st)) return ((base - 5) * 0.375).to(st);
  return (base * 7 + 3).to(st);
}

using Step = std::function<void(Net&, torch::optim::Optimizer&, int)>;

/// One training step on fixed data (step `i` picks the batch).
void train_step(Net& net, torch::optim::Optimizer& opt, int i) {
  torch::manual_seed(1000 + i);
  const auto x = torch::randn({4, 1, 6, 6});
  const auto y = torch::randint(0, 2, {4}, torch::kLong);
  net->train();
  opt.zero_grad();
  torch::nn::functional::cross_entropy(net->forward(x), y).backward();
  opt.step();
}

struct OptCase {
  std::string name;
  std::function<std::unique_ptr<torch::optim::Optimizer>(Net&)> make;
};
std::vector<OptCase> optimizer_cases() {
  namespace o = torch::optim;
  return {
      {"Adam", [](Net& n) { return std::make_unique<o::Adam>(n->parameters(), o::AdamOptions(1e-2)); }},
      {"Adam amsgrad", [](Net& n) { return std::make_unique<o::Adam>(n->parameters(), o::AdamOptions(1e-2).amsgrad(true).weight_decay(1e-3)); }},
      {"AdamW", [](Net& n) { return std::make_unique<o::AdamW>(n->parameters(), o::AdamWOptions(1e-2)); }},
      {"AdamW amsgrad", [](Net& n) { return std::make_unique<o::AdamW>(n->parameters(), o::AdamWOptions(1e-2).amsgrad(true)); }},
      {"SGD", [](Net& n) { return std::make_unique<o::SGD>(n->parameters(), o::SGDOptions(0.1)); }},
      {"SGD momentum", [](Net& n) { return std::make_unique<o::SGD>(n->parameters(), o::SGDOptions(0.1).momentum(0.9).dampening(0.1).weight_decay(1e-3)); }},
      {"SGD nesterov", [](Net& n) { return std::make_unique<o::SGD>(n->parameters(), o::SGDOptions(0.1).momentum(0.9).nesterov(true)); }},
      {"RMSprop", [](Net& n) { return std::make_unique<o::RMSprop>(n->parameters(), o::RMSpropOptions(1e-2)); }},
      {"RMSprop centered momentum", [](Net& n) { return std::make_unique<o::RMSprop>(n->parameters(), o::RMSpropOptions(1e-2).centered(true).momentum(0.5)); }},
      {"Adagrad", [](Net& n) { return std::make_unique<o::Adagrad>(n->parameters(), o::AdagradOptions(0.1).lr_decay(0.01).initial_accumulator_value(0.1)); }},
  };
}

}  // namespace

TEST_CASE("at::Tensor: every dtype libtorch has round-trips, into new and into existing tensors", "[torch][tensor]") {
  ckpt_test::TempDir dir;
  int covered = 0;
  for (const DType d : ckpt::all_dtypes) {
    const auto st = ckpt::detail::libtorch::scalar_type_of(d);
    if (!st) continue;  // float8 (torch >= 2.1), uint16/32/64 (torch >= 2.3)
    ++covered;
    CAPTURE(ckpt::name(d));
    const auto t = sample(*st);
    std::map<std::string, torch::Tensor> saved{{"t", t}, {"scalar", t.flatten()[5].clone()}};
    for (const char* ext : {".ckpt", ".pt", ".json"}) {
      CAPTURE(ext);
      const auto path = dir / (std::string(ckpt::name(d)) + ext);
      ckpt::save(path, saved);
      std::map<std::string, torch::Tensor> fresh;  // undefined tensors: new CPU ones
      ckpt::load_into(path, fresh);
      REQUIRE(fresh.size() == 2);
      CHECK(fresh["t"].scalar_type() == *st);
      CHECK(fresh["t"].sizes() == t.sizes());
      CHECK(torch::equal(fresh["t"], t));
      CHECK(fresh["scalar"].dim() == 0);
      CHECK(torch::equal(fresh["scalar"], saved["scalar"]));
      auto existing = torch::zeros_like(t);  // a defined tensor is written in place
      const void* before = existing.data_ptr();
      std::map<std::string, torch::Tensor> into{{"t", existing}, {"scalar", torch::zeros({}, t.options())}};
      ckpt::load_into(path, into);
      CHECK(existing.data_ptr() == before);
      CHECK(torch::equal(existing, t));
    }
  }
  CHECK(covered >= 12);  // f64 f32 f16 bf16 i8 i16 i32 i64 u8 bool c64 c128 on every libtorch
}

TEST_CASE("at::Tensor: contiguous CPU tensors are borrowed, views are saved as their values", "[torch][tensor]") {
  const auto t = torch::arange(24, torch::kFloat).reshape({4, 6});
  const auto borrowed = ckpt::to_state_dict(t).tensor();
  CHECK(borrowed.data() == t.data_ptr());  // no copy
  CHECK_FALSE(borrowed.owner());           // borrowed: an async save copies it like any user memory

  const auto rows = t.narrow(0, 1, 2);  // contiguous with a storage offset: still borrowed
  CHECK(ckpt::to_state_dict(rows).tensor().data() == rows.data_ptr());

  const auto transposed = t.t();  // non-contiguous: saved as its contiguous values
  const auto copied = ckpt::to_state_dict(transposed).tensor();
  CHECK(copied.shape() == ckpt::Shape{6, 4});
  CHECK(copied.owner());
  CHECK(torch::equal(ckpt::detail::libtorch::copy_of(copied), transposed));
  const auto strided = t.slice(1, 0, 6, 2);
  CHECK(torch::equal(ckpt::detail::libtorch::copy_of(ckpt::to_state_dict(strided).tensor()), strided));

  const auto z = torch::complex(torch::ones({3}), torch::arange(3, torch::kFloat));
  const auto conj = ckpt::detail::libtorch::copy_of(ckpt::to_state_dict(z.conj()).tensor());  // lazy conjugate view
  CHECK(torch::equal(conj, z.conj().resolve_conj()));

  const auto zero_d = torch::tensor(2.5);
  const auto s = ckpt::to_state_dict(zero_d).tensor();
  CHECK(s.shape().empty());
  CHECK(s.item<float>() == 2.5f);

  CHECK_THROWS_AS(ckpt::to_state_dict(torch::Tensor()), ckpt::unsupported_error);
  CHECK_THROWS_AS(ckpt::to_state_dict(torch::eye(3).to_sparse()), ckpt::unsupported_error);
}

TEST_CASE("at::Tensor: a shape or dtype mismatch names the key", "[torch][tensor]") {
  ckpt_test::TempDir dir;
  ckpt::save(dir / "w.ckpt", std::map<std::string, torch::Tensor>{{"w", torch::ones({2, 3})}});
  ckpt::save(dir / "b.ckpt", std::map<std::string, torch::Tensor>{{"b", torch::ones({3}, torch::kDouble)}});
  auto w = torch::zeros({3, 2});
  std::map<std::string, torch::Tensor> dw{{"w", w}};
  try {
    ckpt::load_into(dir / "w.ckpt", dw);
    FAIL("shape mismatch accepted");
  } catch (const ckpt::mismatch_error& e) {
    CHECK(e.path() == (dir / "w.ckpt").string());
    CHECK(e.key() == "w");
    CHECK(e.expected() == "[3, 2]");
    CHECK(e.got() == "[2, 3]");
  }
  CHECK(torch::equal(w, torch::zeros({3, 2})));
  std::map<std::string, torch::Tensor> db{{"b", torch::zeros({3})}};
  try {
    ckpt::load_into(dir / "b.ckpt", db);
    FAIL("dtype mismatch accepted");
  } catch (const ckpt::mismatch_error& e) {
    CHECK(e.key() == "b");
    CHECK(e.expected() == "f32");
    CHECK(e.got() == "f64");
  }

  if (!ckpt::detail::libtorch::scalar_type_of(DType::u16)) {  // libtorch < 2.3 has no uint16
    ckpt::save(dir / "u16.ckpt", [] { StateDict s; s.set("u", ckpt::Tensor(DType::u16, {2})); return s; }());
    std::map<std::string, torch::Tensor> u;
    try {
      ckpt::load_into(dir / "u16.ckpt", u);
      FAIL("u16 accepted");
    } catch (const ckpt::mismatch_error& e) {
      CHECK(e.key() == "u");
      CHECK(e.got() == "u16");
    }
  }
}

TEST_CASE("at::Tensor: with LoadOptions::mmap an undefined tensor views the mapping, kept alive", "[torch][tensor]") {
  ckpt_test::TempDir dir;
  const auto t = torch::arange(1000, torch::kFloat);
  ckpt::save(dir / "m.ckpt", std::map<std::string, torch::Tensor>{{"t", t}});
  LoadOptions mm;
  mm.mmap = true;
  torch::Tensor viewed;
  {
    const StateDict sd = ckpt::load(dir / "m.ckpt", mm);
    REQUIRE(sd.at("t").tensor().owner());
    ckpt::load_state_dict(viewed, sd.at("t"), mm);
    CHECK(viewed.data_ptr() == sd.at("t").tensor().data());  // no copy
  }  // the StateDict (and the reader) are gone; the tensor keeps the mapping
  CHECK(torch::equal(viewed, t));
  torch::Tensor copied;
  ckpt::load_state_dict(copied, ckpt::load(dir / "m.ckpt").at("t"));  // without mmap: a copy
  CHECK(torch::equal(copied, t));
}

TEST_CASE("Module: state_dict has Python's keys in Python's order, flat", "[torch][module]") {
  Net net = make_net(1);
  const std::vector<std::string> python_order = {
      "scale",  // the module's own parameters, then its buffers, then its children in order
      "features.0.weight", "features.0.bias", "features.0.running_mean", "features.0.running_var", "features.0.num_batches_tracked",
      "features.1.weight",  // bias=false: no bias entry, as in Python
      "features.2.weight", "features.2.bias", "features.2.running_mean", "features.2.running_var", "features.2.num_batches_tracked",
      "head.weight", "head.bias"};
  const StateDict sd = ckpt::to_state_dict(*net);
  CHECK(sd.keys() == python_order);
  CHECK(sd.find_key("features.0.num_batches_tracked")->tensor().dtype() == DType::i64);
  CHECK(ckpt::to_state_dict(net) == sd);  // the holder and the module alike
  torch::nn::Linear lin(3, 2);
  CHECK(ckpt::to_state_dict(lin).keys() == std::vector<std::string>{"weight", "bias"});
}

TEST_CASE("Module: loads are strict and all-or-nothing, mismatches name the key", "[torch][module]") {
  ckpt_test::TempDir dir;
  Net a = make_net(1), b = make_net(2);
  ckpt::save(dir / "net.pt", *a);
  const StateDict before = state_of(*b);

  StateDict extra = ckpt::load(dir / "net.pt");
  extra.set("surplus", ckpt::Tensor(DType::f32, {1}));
  extra.erase("head.bias");
  ckpt::save(dir / "extra.pt", extra);
  try {
    ckpt::load_into(dir / "extra.pt", b);
    FAIL("strict load accepted missing and unexpected keys");
  } catch (const ckpt::key_error& e) {
    const std::string m = e.what();
    CHECK(m.find("head\\.bias") != std::string::npos);
    CHECK(m.find("surplus") != std::string::npos);
  }
  CHECK(state_of(*b) == before);  // nothing was copied

  LoadOptions lax;
  lax.strict = false;
  const auto r = ckpt::load_into(dir / "extra.pt", b, lax);
  CHECK(r.missing == std::vector<std::string>{"head\\.bias"});
  CHECK(r.unexpected == std::vector<std::string>{"surplus"});
  CHECK(torch::equal(b->head->weight, a->head->weight));

  StateDict wrong = ckpt::load(dir / "net.pt");
  wrong.set("head.weight", ckpt::Tensor(DType::f32, {3, 48}));
  ckpt::save(dir / "wrong.pt", wrong);
  Net c = make_net(3);
  ckpt::Checkpoint ck{{"model", *c}};
  ckpt::save(dir / "ck.pt", [&] { StateDict s; s.set("model", wrong); return s; }());
  try {
    ck.restore(dir / "ck.pt");
    FAIL("shape mismatch accepted");
  } catch (const ckpt::mismatch_error& e) {
    CHECK(e.key() == "model.head\\.weight");
    CHECK(e.expected() == "[2, 48]");
    CHECK(e.got() == "[3, 48]");
    CHECK(std::string(e.what()).find("ck.pt") != std::string::npos);
  }
  LoadOptions skip;
  skip.skip_mismatched = true;
  const auto r2 = ckpt::load_into(dir / "wrong.pt", c, skip);
  REQUIRE(r2.mismatched.size() == 1);
  CHECK(r2.mismatched[0].rfind("head\\.weight (expected [2, 48], got [3, 48])", 0) == 0);
  CHECK(torch::equal(c->head->bias, a->head->bias));
}

TEST_CASE("Module: safetensors holds the model (flat names), read back into a fresh model", "[torch][module]") {
  ckpt_test::TempDir dir;
  Net a = make_net(1), b = make_net(2);
  torch::optim::SGD sgd(a->parameters(), torch::optim::SGDOptions(0.1));
  train_step(a, sgd, 0);  // running statistics and num_batches_tracked move too
  ckpt::save(dir / "model.safetensors", *a);
  const StateDict flat = ckpt::load(dir / "model.safetensors");
  CHECK(flat.keys() == state_of(*a).keys());
  ckpt::load_into(dir / "model.safetensors", b);
  CHECK(state_of(*b) == state_of(*a));
  CHECK(b->features[0]->as<torch::nn::BatchNorm2d>()->num_batches_tracked.item<std::int64_t>() == 1);
}

TEST_CASE("Optimizers: each resumes exactly through a CheckpointManager (native format)", "[torch][optim]") {
  const int k = 3, n = 3;
  for (const auto& c : optimizer_cases()) {
    SECTION(c.name) {
      ckpt_test::TempDir dir;
      Net ref = make_net(1);
      auto ref_opt = c.make(ref);
      std::int64_t step = 0;
      {
        ckpt::Checkpoint ck{{"model_state_dict", *ref}, {"optimizer_state_dict", *ref_opt}, {"step", step}};
        ckpt::CheckpointManager mgr(dir.path(), ck);
        for (; step < k; ++step) train_step(ref, *ref_opt, static_cast<int>(step));
        mgr.save(step);
      }
      for (int i = k; i < k + n; ++i) train_step(ref, *ref_opt, i);  // the uninterrupted run

      Net net = make_net(7);  // other weights, no optimizer state: the restore replaces both
      auto opt = c.make(net);
      std::int64_t restored = 0;
      ckpt::Checkpoint ck{{"model_state_dict", *net}, {"optimizer_state_dict", *opt}, {"step", restored}};
      ckpt::CheckpointManager mgr(dir.path(), ck);
      REQUIRE(mgr.restore_or_initialize() == std::optional<std::int64_t>(k));
      mgr.last_restore()->assert_consumed();
      for (int i = static_cast<int>(restored); i < k + n; ++i) train_step(net, *opt, i);
      CHECK(state_of(*net) == state_of(*ref));  // bit for bit: same kernels, same order
      CHECK(state_of(*opt) == state_of(*ref_opt));
    }
  }
}

TEST_CASE("Optimizers: Python's layout, two parameter groups numbered in order", "[torch][optim]") {
  Net net = make_net(1);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(net->head->parameters(), std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(0.5)));
  groups.emplace_back(net->features->parameters());
  torch::optim::Adam adam(groups, torch::optim::AdamOptions(0.25).betas({0.8, 0.9}));
  train_step(net, adam, 0);
  const StateDict sd = ckpt::to_state_dict(adam);
  CHECK(sd.keys() == std::vector<std::string>{"state", "param_groups"});
  const auto& state = sd.at("state");
  CHECK(state.container() == ckpt::Container::int_dict);
  CHECK(state.size() == 2 + net->features->parameters().size());
  CHECK(state.at("0").keys() == std::vector<std::string>{"step", "exp_avg", "exp_avg_sq"});
  CHECK(state.at("0.step").tensor().dtype() == DType::f32);
  CHECK(state.at("0.step").tensor().shape().empty());
  CHECK(state.at("0.step").tensor().item<float>() == 1.0f);
  CHECK(state.at("0.exp_avg").tensor().shape() == ckpt::Shape{2, 48});  // head.weight is parameter 0
  const auto& g = sd.at("param_groups");
  CHECK(g.container() == ckpt::Container::list);
  CHECK(g.at("0").keys() == std::vector<std::string>{"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach",
                                                     "capturable", "differentiable", "fused", "params"});
  CHECK(g.at("0.lr").value() == 0.5);
  CHECK(g.at("1.lr").value() == 0.25);
  CHECK(g.at("1.betas").value() == ckpt::Value::array({0.8, 0.9}));
  CHECK(g.at("0.params").value() == ckpt::Value::array({0, 1}));
  CHECK(g.at("1.params").value().front() == 2);

  Net other = make_net(2);  // restore into another optimizer of the same shape: groups stay apart
  std::vector<torch::optim::OptimizerParamGroup> groups2;
  groups2.emplace_back(other->head->parameters());
  groups2.emplace_back(other->features->parameters());
  torch::optim::Adam adam2(groups2, torch::optim::AdamOptions(1.0));
  ckpt::load_state_dict(adam2, sd);
  CHECK(state_of(adam2) == sd);
}

TEST_CASE("Optimizers: a Python-written state dict loads, what libtorch cannot do is refused by key", "[torch][optim]") {
  Net net = make_net(1);
  const auto params = net->parameters();
  // What ckpt's .pt reader makes of torch.save(opt.state_dict()) from Python 1.13/2.x:
  // param_groups one JSON value (keys sorted), steps float32 0-d tensors, extra Python keys.
  auto python_state = [&](ckpt::Value group) {
    StateDict sd;
    StateDict state = StateDict::dict(ckpt::Container::int_dict);
    for (std::size_t i = 0; i < params.size(); ++i) {
      StateDict e;
      e.set("step", ckpt::Tensor::scalar(4.0f));
      e.set("exp_avg", ckpt::to_state_dict(torch::full_like(params[i], 0.25)).tensor().clone());
      e.set("exp_avg_sq", ckpt::to_state_dict(torch::full_like(params[i], 0.5)).tensor().clone());
      state.set(std::to_string(i + 10), std::move(e));  // ids as saved: zipped with our parameters
    }
    ckpt::Value ids = ckpt::Value::array();
    for (std::size_t i = 0; i < params.size(); ++i) ids.push_back(i + 10);
    group["params"] = ids;
    sd.set("state", std::move(state));
    sd.set("param_groups", StateDict(ckpt::Value::array({group})));
    return sd;
  };
  const ckpt::Value group = {{"lr", 0.125}, {"betas", {0.5, 0.75}}, {"eps", 1e-6}, {"weight_decay", 0},  // an int, as Python may keep it
                             {"amsgrad", false}, {"maximize", false}, {"foreach", nullptr}, {"capturable", false},
                             {"differentiable", false}, {"fused", nullptr}, {"initial_lr", 0.5}};
  torch::optim::Adam adam(params, torch::optim::AdamOptions(1.0));
  const auto r = ckpt::load_state_dict(adam, python_state(group));
  CHECK(r.ok());
  const auto& o = static_cast<const torch::optim::AdamOptions&>(adam.param_groups()[0].options());
  CHECK(o.lr() == 0.125);
  CHECK(std::get<1>(o.betas()) == 0.75);
  CHECK(o.eps() == 1e-6);
  const auto back = ckpt::to_state_dict(adam);
  CHECK(back.at("state.0.step").tensor().item<float>() == 4.0f);
  CHECK(back.at("state.0.exp_avg").tensor().values<float>()[0] == 0.25f);
  train_step(net, adam, 0);  // libtorch finds the state under its own keys: step 4 -> 5
  CHECK(ckpt::to_state_dict(adam).at("state.0.step").tensor().item<float>() == 5.0f);

  for (const char* key : {"maximize", "differentiable"}) {
    CAPTURE(key);
    auto bad = group;
    bad[key] = true;
    torch::optim::Adam fresh(params, torch::optim::AdamOptions(1.0));
    try {
      ckpt::load_state_dict(fresh, python_state(bad));
      FAIL("accepted " << key << "=True");
    } catch (const ckpt::mismatch_error& e) {
      CHECK(e.key() == std::string("param_groups.0.") + key);
      CHECK(e.expected() == "false");
      CHECK(std::string(e.what()).find("libtorch's Adam") != std::string::npos);
    }
    CHECK(static_cast<const torch::optim::AdamOptions&>(fresh.param_groups()[0].options()).lr() == 1.0);  // unchanged
  }
  auto unknown = group;
  unknown["nesterov"] = true;  // not an Adam key
  torch::optim::Adam fresh(params, torch::optim::AdamOptions(1.0));
  LoadOptions lax;
  lax.strict = false;
  CHECK(ckpt::load_state_dict(fresh, python_state(unknown), lax).unexpected == std::vector<std::string>{"param_groups.0.nesterov"});

  // torch 1.13's SGD: {"momentum_buffer": None} entries (all values: a JSON object leaf).
  torch::optim::SGD sgd(params, torch::optim::SGDOptions(0.5));
  StateDict s1;
  StateDict st = StateDict::dict(ckpt::Container::int_dict);
  for (std::size_t i = 0; i < params.size(); ++i) st.set(std::to_string(i), StateDict(ckpt::Value{{"momentum_buffer", nullptr}}));
  s1.set("state", std::move(st));
  ckpt::Value ids = ckpt::Value::array();
  for (std::size_t i = 0; i < params.size(); ++i) ids.push_back(i);
  s1.set("param_groups", StateDict(ckpt::Value::array({{{"lr", 0.25}, {"momentum", 0}, {"dampening", 0}, {"weight_decay", 0},
                                                        {"nesterov", false}, {"maximize", false}, {"foreach", nullptr},
                                                        {"differentiable", false}, {"params", ids}}})));
  CHECK(ckpt::load_state_dict(sgd, s1).ok());
  CHECK(sgd.state().empty());
  CHECK(static_cast<const torch::optim::SGDOptions&>(sgd.param_groups()[0].options()).lr() == 0.25);

  // An optimizer without state nested in a .pt holds no tensor: the .pt reader returns it as
  // one JSON object value, which loads as well.
  ckpt_test::TempDir dir;
  torch::optim::SGD plain(params, torch::optim::SGDOptions(0.5).momentum(0.25));
  ckpt::Checkpoint{{"opt", plain}}.write(dir / "sgd.pt");
  REQUIRE(ckpt::load(dir / "sgd.pt").at("opt").is_value());
  torch::optim::SGD plain2(params, torch::optim::SGDOptions(1.0));
  ckpt::Checkpoint ck{{"opt", plain2}};
  ck.restore(dir / "sgd.pt").assert_consumed();
  CHECK(static_cast<const torch::optim::SGDOptions&>(plain2.param_groups()[0].options()).momentum() == 0.25);
}

TEST_CASE("CheckpointManager async: a save holds the state of its call, training goes on", "[torch][manager]") {
  ckpt_test::TempDir dir;
  Net net = make_net(1);
  torch::optim::RMSprop opt(net->parameters(), torch::optim::RMSpropOptions(1e-2).momentum(0.5));
  train_step(net, opt, 0);
  const StateDict at_save = snapshot(ckpt::to_state_dict(*net));
  ckpt::Checkpoint ck{{"model_state_dict", *net}, {"optimizer_state_dict", opt}};
  ckpt::ManagerOptions mo;
  mo.async = true;
  ckpt::CheckpointManager mgr(dir.path(), ck, mo);
  mgr.save(1);
  train_step(net, opt, 1);  // right away, while the save may still be writing
  mgr.wait_until_finished();
  Net back = make_net(2);
  ckpt::load_state_dict(*back, ckpt::load(*mgr.latest()).at("model_state_dict"));
  CHECK(state_of(*back) == at_save);
}

TEST_CASE("Checkpoint: the lines a libtorch user writes, a .pt Python opens", "[torch][checkpoint]") {
  ckpt_test::TempDir dir;
  Net model = make_net(1);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-2).amsgrad(true));
  train_step(model, optimizer, 0);
  std::int64_t epoch = 1;
  ckpt::Checkpoint ck{{"model_state_dict", *model}, {"optimizer_state_dict", optimizer}, {"epoch", epoch}};
  ck.write(dir / "run.pt");

  Net model2 = make_net(2);
  torch::optim::Adam optimizer2(model2->parameters(), torch::optim::AdamOptions(1e-3));
  std::int64_t epoch2 = 0;
  ckpt::Checkpoint ck2{{"model_state_dict", *model2}, {"optimizer_state_dict", optimizer2}, {"epoch", epoch2}};
  ck2.restore(dir / "run.pt").assert_consumed();
  CHECK(epoch2 == 1);
  CHECK(state_of(*model2) == state_of(*model));
  CHECK(state_of(optimizer2) == state_of(optimizer));
}
