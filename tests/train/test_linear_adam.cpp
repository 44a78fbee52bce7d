// Tests for the training example's model and optimizer (examples/linear_adam.hpp): Adam
// against hand-computed values from torch's formula, training lowers the loss, wrong shapes
// raise mismatch_error naming model.weight, non-strict loads report missing/unexpected keys.
#include "ckpt_catch.hpp"
#include <cmath>

#include "linear_adam.hpp"
#include "test_util.hpp"

using namespace linear_adam;

TEST_CASE("Adam: two steps equal the values computed by hand from torch's formula", "[train][adam]") {
  std::vector<float> w{1.0f};
  Adam adam({{&w, {1}, {}}}, {0.1, 0.9, 0.999, 1e-8, 0, false, false});
  // step 1: m = 0.05, v = 0.00025, step_size = 0.1/0.1 = 1, denom = sqrt(v/0.001) + eps = 0.5 + 1e-8
  adam.zero_grad();
  adam.params()[0].grad[0] = 0.5f;
  adam.step();
  CHECK(w[0] == Approx(1.0 - 0.05 / (0.5 + 1e-8)).epsilon(1e-6));
  // step 2: m = 0.095, v = 0.00049975, bc1 = 0.19, bc2 = 0.001999 -> update = (0.1/0.19) * 0.095 / 0.5 = 0.1
  adam.zero_grad();
  adam.params()[0].grad[0] = 0.5f;
  adam.step();
  CHECK(w[0] == Approx(0.8).epsilon(1e-6));
  CHECK(adam.state()[0].step == 2.0f);
  CHECK(adam.state()[0].exp_avg[0] == Approx(0.095).epsilon(1e-6));
  CHECK(adam.state()[0].exp_avg_sq[0] == Approx(0.00049975).epsilon(1e-6));
}

TEST_CASE("Adam: weight decay, amsgrad, maximize and eps follow torch's formula (double reference)", "[train][adam]") {
  // The gradients shrink after the first step, so the second moment falls and amsgrad's max(v)
  // differs from v; eps = 1e-2 is large beside sqrt(v_hat), so eps inside the square root (or
  // before the bias correction) moves w by far more than the tolerance. Each variant fails when
  // its term of linear_adam.hpp's formula is changed.
  for (int variant = 0; variant < 4; ++variant) {
    Adam::Options o{0.05, 0.8, 0.9, 1e-2, variant == 0 ? 0.1 : 0.0, variant == 1, variant == 2};
    std::vector<float> w{0.3f, -1.2f};
    Adam adam({{&w, {2}, {}}}, o);
    double rw[2] = {0.3, -1.2}, m[2] = {0, 0}, v[2] = {0, 0}, vmax[2] = {0, 0};
    const float grads[4][2] = {{0.9f, -0.7f}, {0.05f, 0.04f}, {-0.03f, 0.02f}, {0.02f, -0.05f}};
    for (int t = 1; t <= 4; ++t) {
      adam.zero_grad();
      for (int k = 0; k < 2; ++k) adam.params()[0].grad[static_cast<std::size_t>(k)] = grads[t - 1][k];
      adam.step();
      for (int k = 0; k < 2; ++k) {  // torch.optim.Adam, written out
        double g = o.maximize ? -grads[t - 1][k] : grads[t - 1][k];
        g += o.weight_decay * rw[k];
        m[k] = o.beta1 * m[k] + (1 - o.beta1) * g;
        v[k] = o.beta2 * v[k] + (1 - o.beta2) * g * g;
        vmax[k] = std::max(vmax[k], v[k]);
        const double mhat = m[k] / (1 - std::pow(o.beta1, t));
        const double vs = (o.amsgrad ? vmax[k] : v[k]);
        rw[k] -= o.lr * mhat / (std::sqrt(vs) / std::sqrt(1 - std::pow(o.beta2, t)) + o.eps);
        if (o.amsgrad && t > 1) REQUIRE(vmax[k] > v[k] * 1.05);  // the case amsgrad changes
        INFO("variant " << variant << " step " << t << " k " << k);
        REQUIRE(w[static_cast<std::size_t>(k)] == Approx(rw[k]).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("training lowers the loss", "[train]") {
  const Dataset d = Dataset::synthetic(3, 1024, 8, 2);
  Trainer t(d, 3);
  const double first = t.train_epoch(d);
  double last = first;
  for (int e = 0; e < 5; ++e) last = t.train_epoch(d);
  CHECK(last < first * 0.2);
  CHECK(t.epoch == 6);
}

TEST_CASE("the optimizer state dict has torch's layout", "[train][adam]") {
  const Dataset d = Dataset::synthetic(1, 256, 4, 1);
  Trainer t(d, 1);
  t.train_epoch(d);
  const ckpt::StateDict sd = ckpt::to_state_dict(t.optimizer);
  CHECK(sd.keys() == std::vector<std::string>{"state", "param_groups"});
  CHECK(sd.at("state").container() == ckpt::Container::int_dict);
  CHECK(sd.at("state").keys() == std::vector<std::string>{"0", "1"});
  CHECK(sd.at("state.0").keys() == std::vector<std::string>{"step", "exp_avg", "exp_avg_sq"});
  CHECK(sd.at("state.0.step").tensor().dtype() == ckpt::DType::f32);
  CHECK(sd.at("state.0.step").tensor().shape().empty());
  CHECK(sd.at("state.0.exp_avg").tensor().shape() == ckpt::Shape{1, 4});
  const auto& g = sd.at("param_groups").value()[0];
  for (const char* k : {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused", "params"})
    CHECK(g.contains(k));
  CHECK(g["params"] == ckpt::Value::array({0, 1}));
}

TEST_CASE("loading into a model of a different shape names model.weight, non-strict reports keys", "[train]") {
  ckpt_test::TempDir dir;
  const Dataset d = Dataset::synthetic(1, 256, 4, 1);
  Trainer small(d, 1);
  small.train_epoch(d);
  ckpt::save(dir / "t.ckpt", small);

  const Dataset wide = Dataset::synthetic(1, 256, 6, 1);
  Trainer other(wide, 1);
  try {
    ckpt::load_into(dir / "t.ckpt", other);
    FAIL("no mismatch_error");
  } catch (const ckpt::mismatch_error& e) {
    CHECK(e.key() == "model.weight");
    CHECK(e.expected() == "[1, 6]");
    CHECK(e.got() == "[1, 4]");
  }

  ckpt::StateDict sd = ckpt::load(dir / "t.ckpt");
  sd.at("model").erase("bias");
  sd["model"]["extra"] = ckpt::Tensor::from<float>({1});
  ckpt::save(dir / "edited.ckpt", sd);
  Trainer same(d, 1);
  CHECK_THROWS_AS(ckpt::load_into(dir / "edited.ckpt", same), ckpt::key_error);
  ckpt::LoadOptions lax;
  lax.strict = false;
  const ckpt::LoadReport r = ckpt::load_into(dir / "edited.ckpt", same, lax);
  CHECK(r.missing == std::vector<std::string>{"model.bias"});
  CHECK(r.unexpected == std::vector<std::string>{"model.extra"});
  CHECK(same.model.weight() == small.model.weight());
}

TEST_CASE("keys missing inside the optimizer's state are named by their full path", "[train][adam]") {
  ckpt_test::TempDir dir;
  const Dataset d = Dataset::synthetic(1, 256, 4, 1);
  Trainer t(d, 1);
  t.train_epoch(d);
  ckpt::StateDict sd = ckpt::to_state_dict(t);
  sd.at("optimizer.state.0").erase("step");
  sd.at("optimizer.state.1").erase("exp_avg_sq");
  ckpt::save(dir / "edited.ckpt", sd);
  Trainer back(d, 1);
  try {
    ckpt::load_into(dir / "edited.ckpt", back);
    FAIL("no key_error");
  } catch (const ckpt::key_error& e) {
    CHECK(std::string(e.what()).find("optimizer.state.0.step") != std::string::npos);
  }
  ckpt::LoadOptions lax;
  lax.strict = false;
  const ckpt::LoadReport r = ckpt::load_into(dir / "edited.ckpt", back, lax);
  CHECK(r.missing == std::vector<std::string>{"optimizer.state.0.step", "optimizer.state.1.exp_avg_sq"});
}

TEST_CASE("a restored trainer continues exactly like the original", "[train]") {
  ckpt_test::TempDir dir;
  const Dataset d = Dataset::synthetic(5, 512, 4, 1);
  Trainer a(d, 5);
  a.train_epoch(d);
  a.train_epoch(d);
  ckpt::save(dir / "a.ckpt", a);
  Trainer b(d, 5);
  ckpt::load_into(dir / "a.ckpt", b);
  CHECK(b.digest() == a.digest());
  a.train_epoch(d);
  b.train_epoch(d);
  CHECK(b.digest() == a.digest());
  CHECK(b.loss == a.loss);
}

TEST_CASE("a trainer saved inside an epoch continues exactly like the original, its epoch loss included", "[train]") {
  ckpt_test::TempDir dir;
  const Dataset d = Dataset::synthetic(5, 512, 4, 1);  // 8 batches an epoch
  Trainer a(d, 5);
  a.train_epoch(d);
  CHECK_FALSE(a.train_until(d, 11));  // 3 batches into the second epoch
  CHECK(a.global_step(d) == 11);
  CHECK(a.next_batch == 3);
  CHECK(a.running_loss > 0);
  ckpt::save(dir / "mid.ckpt", a);
  Trainer b(d, 5);
  ckpt::load_into(dir / "mid.ckpt", b);
  CHECK(b.digest() == a.digest());
  Trainer whole(d, 5);  // never stopped
  whole.train_epoch(d);
  whole.train_epoch(d);
  CHECK(b.train_epoch(d) == whole.loss);  // the mean over all 8 batches, 3 of them before the save
  CHECK(a.train_epoch(d) == whole.loss);
  CHECK(b.digest() == whole.digest());
  CHECK(b.epoch == 2);
  CHECK(b.running_loss == 0);
}
