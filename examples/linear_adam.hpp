// examples/linear_adam.hpp — a linear regression model and torch.optim.Adam, written from
// scratch, both Checkpointable through the library's public extension points:
//   Linear  — through member functions (the PyTorch shape: state_dict / load_state_dict);
//   Adam    — through ADL free functions next to the type;
//   Trainer — the whole training state (model, optimizer, epoch, loss, RNG, data order and
//             the position and running loss inside the epoch) through CKPT_FIELDS.
// The example program (train_linear.cpp) and the tests share this header.
#pragma once

#include <ckpt/ckpt.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace linear_adam {

/// Synthetic regression data from a seed: y = x·w* + b* + noise.
struct Dataset {
  std::int64_t n = 0, in = 0, out = 0;
  std::vector<float> x, y;  // [n, in], [n, out]

  static Dataset synthetic(std::uint64_t seed, std::int64_t n = 4096, std::int64_t in = 16, std::int64_t out = 1) {
    Dataset d{n, in, out, std::vector<float>(static_cast<std::size_t>(n * in)), std::vector<float>(static_cast<std::size_t>(n * out))};
    std::mt19937_64 g(seed ^ 0x5eed);
    std::normal_distribution<float> normal;
    std::vector<float> w(static_cast<std::size_t>(in * out)), b(static_cast<std::size_t>(out));
    for (auto& v : w) v = normal(g);
    for (auto& v : b) v = normal(g);
    for (auto& v : d.x) v = normal(g);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t o = 0; o < out; ++o) {
        float s = b[static_cast<std::size_t>(o)];
        for (std::int64_t k = 0; k < in; ++k) s += d.x[static_cast<std::size_t>(i * in + k)] * w[static_cast<std::size_t>(o * in + k)];
        d.y[static_cast<std::size_t>(i * out + o)] = s + 0.1f * normal(g);
      }
    return d;
  }
};

/// A parameter: a flat float buffer with a shape (what the optimizer updates).
struct Param {
  std::vector<float>* data;
  ckpt::Shape shape;
  std::vector<float> grad;
};

/// y = x Wᵀ + b with weight [out, in] and bias [out], as torch.nn.Linear.
class Linear {
 public:
  Linear(std::int64_t in = 0, std::int64_t out = 0, std::uint64_t seed = 0)
      : in_(in), out_(out), weight_(static_cast<std::size_t>(in * out)), bias_(static_cast<std::size_t>(out)) {
    // torch's default init: U(-1/sqrt(in), 1/sqrt(in)) for both.
    std::mt19937_64 g(seed);
    const float bound = in > 0 ? 1.0f / std::sqrt(static_cast<float>(in)) : 0.0f;
    std::uniform_real_distribution<float> u(-bound, bound);
    for (auto& v : weight_) v = u(g);
    for (auto& v : bias_) v = u(g);
  }
  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }
  std::vector<float>& weight() { return weight_; }
  std::vector<float>& bias() { return bias_; }
  const std::vector<float>& weight() const { return weight_; }
  const std::vector<float>& bias() const { return bias_; }
  std::vector<Param> parameters() { return {{&weight_, {out_, in_}, {}}, {&bias_, {out_}, {}}}; }

  /// Forward for one row of inputs.
  void forward(const float* x, float* y) const {
    for (std::int64_t o = 0; o < out_; ++o) {
      float s = bias_[static_cast<std::size_t>(o)];
      for (std::int64_t k = 0; k < in_; ++k) s += x[k] * weight_[static_cast<std::size_t>(o * in_ + k)];
      y[o] = s;
    }
  }

  // ---- Checkpointable through members (route a) ----
  ckpt::StateDict state_dict() const {
    ckpt::StateDict sd;  // views, not copies: saving does not duplicate the weights
    sd.set("weight", ckpt::Tensor::borrow({ckpt::DType::f32, {out_, in_}, bytes(weight_), weight_.size() * sizeof(float)}));
    sd.set("bias", ckpt::Tensor::borrow({ckpt::DType::f32, {out_}, bytes(bias_), bias_.size() * sizeof(float)}));
    return sd;
  }
  ckpt::LoadReport load_state_dict(const ckpt::StateDict& sd, const ckpt::LoadOptions& opts) {
    ckpt::LoadReport r;
    ckpt::expect_dict(sd, "Linear");
    load_param(sd, "weight", weight_, {out_, in_}, opts, r);
    load_param(sd, "bias", bias_, {out_}, opts, r);
    ckpt::report_unexpected(sd, {"weight", "bias"}, r);
    return r;
  }

 private:
  static const std::byte* bytes(const std::vector<float>& v) { return reinterpret_cast<const std::byte*>(v.data()); }
  // Like torch: the stored tensor must have the parameter's exact dtype and shape.
  static void load_param(const ckpt::StateDict& sd, const char* key, std::vector<float>& dst, const ckpt::Shape& shape,
                         const ckpt::LoadOptions& opts, ckpt::LoadReport& r) {
    const ckpt::StateDict* n = sd.find_key(key);
    if (!n) {
      r.missing.push_back(key);
      return;
    }
    try {
      if (!n->is_tensor()) throw ckpt::mismatch_error("wrong kind of value", "", "tensor", "non-tensor");
      ckpt::check_assignable(n->tensor(), ckpt::DType::f32, &shape);
    } catch (const ckpt::mismatch_error& e) {
      if (!opts.skip_mismatched) ckpt::rethrow_with_prefix(e, ckpt::KeyPath{key});
      r.mismatched.push_back(std::string(key) + " (expected " + e.expected() + ", got " + e.got() + ")");
      return;
    }
    auto v = n->tensor().values<float>();
    std::copy(v.begin(), v.end(), dst.begin());
  }

  std::int64_t in_, out_;
  std::vector<float> weight_, bias_;
};

/// torch.optim.Adam (single-tensor path, as in torch 1.13/2.x), float32 state.
class Adam {
 public:
  struct Options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
    bool amsgrad = false, maximize = false;
  };
  struct State {
    float step = 0;  // torch keeps a float32 0-d tensor
    std::vector<float> exp_avg, exp_avg_sq, max_exp_avg_sq;
  };

  Adam() = default;
  Adam(std::vector<Param> params, Options o) : params_(std::move(params)), opt_(o), state_(params_.size()) {}
  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  const Options& options() const { return opt_; }
  Options& options() { return opt_; }
  const std::vector<State>& state() const { return state_; }
  std::vector<State>& state() { return state_; }

  void zero_grad() {
    for (auto& p : params_) p.grad.assign(p.data->size(), 0.0f);
  }
  /// One step, following torch.optim.Adam's algorithm and operation order in float32.
  void step() {
    const float b1 = static_cast<float>(opt_.beta1), b2 = static_cast<float>(opt_.beta2);
    const float one_minus_b1 = static_cast<float>(1 - opt_.beta1), one_minus_b2 = static_cast<float>(1 - opt_.beta2);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      Param& p = params_[i];
      State& s = state_[i];
      const std::size_t n = p.data->size();
      if (s.exp_avg.empty()) {
        s.exp_avg.assign(n, 0.0f);
        s.exp_avg_sq.assign(n, 0.0f);
        if (opt_.amsgrad) s.max_exp_avg_sq.assign(n, 0.0f);
      }
      s.step += 1.0f;
      const double step = s.step;
      const double bias_correction1 = 1 - std::pow(opt_.beta1, step);
      const double bias_correction2 = 1 - std::pow(opt_.beta2, step);
      const float step_size = static_cast<float>(opt_.lr / bias_correction1);
      const float bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
      const float eps = static_cast<float>(opt_.eps), wd = static_cast<float>(opt_.weight_decay);
      for (std::size_t k = 0; k < n; ++k) {
        float g = opt_.maximize ? -p.grad[k] : p.grad[k];
        if (opt_.weight_decay != 0) g = g + wd * (*p.data)[k];
        s.exp_avg[k] = s.exp_avg[k] * b1 + one_minus_b1 * g;
        s.exp_avg_sq[k] = s.exp_avg_sq[k] * b2 + one_minus_b2 * g * g;
        float denom;
        if (opt_.amsgrad) {
          s.max_exp_avg_sq[k] = std::max(s.max_exp_avg_sq[k], s.exp_avg_sq[k]);
          denom = std::sqrt(s.max_exp_avg_sq[k]) / bc2_sqrt + eps;
        } else {
          denom = std::sqrt(s.exp_avg_sq[k]) / bc2_sqrt + eps;
        }
        (*p.data)[k] = (*p.data)[k] + (-step_size) * s.exp_avg[k] / denom;
      }
    }
  }

 private:
  std::vector<Param> params_;
  Options opt_;
  std::vector<State> state_;
};

// ---- Adam is Checkpointable through ADL free functions (route b), in torch's layout:
// {"state": {0: {"step", "exp_avg", "exp_avg_sq"[, "max_exp_avg_sq"]}, ...},
//  "param_groups": [{"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach",
//                    "capturable", "differentiable", "fused", "params": [0, 1, ...]}]}
inline ckpt::StateDict state_dict(const Adam& a) {
  auto view = [](const std::vector<float>& v, const ckpt::Shape& shape) {
    return ckpt::Tensor::borrow({ckpt::DType::f32, shape, reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(float)});
  };
  ckpt::StateDict state = ckpt::StateDict::dict(ckpt::Container::int_dict);
  for (std::size_t i = 0; i < a.state().size(); ++i) {
    const auto& s = a.state()[i];
    if (s.exp_avg.empty()) continue;  // torch has no entry for a parameter never stepped
    ckpt::StateDict e;
    e.set("step", ckpt::Tensor::scalar(s.step));
    e.set("exp_avg", view(s.exp_avg, a.params()[i].shape));
    e.set("exp_avg_sq", view(s.exp_avg_sq, a.params()[i].shape));
    if (a.options().amsgrad) e.set("max_exp_avg_sq", view(s.max_exp_avg_sq, a.params()[i].shape));
    state.set(std::to_string(i), std::move(e));
  }
  const auto& o = a.options();
  ckpt::Value ids = ckpt::Value::array();
  for (std::size_t i = 0; i < a.params().size(); ++i) ids.push_back(i);
  ckpt::Value group = {{"lr", o.lr}, {"betas", {o.beta1, o.beta2}}, {"eps", o.eps}, {"weight_decay", o.weight_decay},
                       {"amsgrad", o.amsgrad}, {"maximize", o.maximize}, {"foreach", nullptr}, {"capturable", false},
                       {"differentiable", false}, {"fused", nullptr}, {"params", ids}};
  ckpt::StateDict sd;
  sd.set("state", std::move(state));
  sd.set("param_groups", ckpt::Value::array({group}));
  return sd;
}

inline ckpt::LoadReport load_state_dict(Adam& a, const ckpt::StateDict& sd, const ckpt::LoadOptions& opts) {
  ckpt::LoadReport r;
  ckpt::expect_dict(sd, "Adam");
  const ckpt::StateDict* groups = sd.find_key("param_groups");
  if (!groups) {
    r.missing.push_back("param_groups");
  } else {
    if (!groups->is_value() || !groups->value().is_array() || groups->value().size() != 1)
      throw ckpt::mismatch_error("Adam expects one parameter group", "param_groups", "a list of 1 group", groups->is_value() ? groups->value().dump() : "a non-value node");
    const auto& g = groups->value()[0];
    auto& o = a.options();
    try {
      o.lr = g.at("lr").get<double>();
      o.beta1 = g.at("betas").at(0).get<double>();
      o.beta2 = g.at("betas").at(1).get<double>();
      o.eps = g.at("eps").get<double>();
      o.weight_decay = g.at("weight_decay").get<double>();
      o.amsgrad = g.at("amsgrad").get<bool>();
      o.maximize = g.value("maximize", false);
      if (g.at("params").size() != a.params().size())
        throw ckpt::mismatch_error("parameter count differs", "param_groups.0.params", std::to_string(a.params().size()), std::to_string(g.at("params").size()));
    } catch (const nlohmann::json::exception& e) {
      throw ckpt::mismatch_error(std::string("malformed parameter group: ") + e.what(), "param_groups.0", "torch Adam group", g.dump());
    }
  }
  const ckpt::StateDict* state = sd.find_key("state");
  if (!state) {
    r.missing.push_back("state");
  } else {
    ckpt::expect_dict(*state, "Adam state");
    for (auto& s : a.state()) s = Adam::State{};
    for (const auto& item : state->items()) {
      std::size_t i = 0;
      try {
        i = std::stoul(item.key);
      } catch (const std::exception&) {
        r.unexpected.push_back("state." + item.key);
        continue;
      }
      if (i >= a.params().size()) {
        r.unexpected.push_back("state." + item.key);
        continue;
      }
      const auto& shape = a.params()[i].shape;
      Adam::State st;
      float step = 0;
      const ckpt::KeyPath at{"state", item.key};
      ckpt::LoadReport here;  // keys relative to state.<i>; merged under that prefix below
      try {
        ckpt::load_child(item.value, "step", step, opts, here);
        st.step = step;
        auto tensor = [&](const char* key, std::vector<float>& dst) {
          const ckpt::StateDict* t = item.value.find_key(key);
          if (!t) {
            here.missing.push_back(key);
            return;
          }
          try {
            if (!t->is_tensor()) throw ckpt::mismatch_error("wrong kind of value", "", "tensor", "non-tensor");
            ckpt::check_assignable(t->tensor(), ckpt::DType::f32, &shape);
          } catch (const ckpt::mismatch_error& e) {
            ckpt::rethrow_with_prefix(e, ckpt::KeyPath{key});
          }
          auto v = t->tensor().values<float>();
          dst.assign(v.begin(), v.end());
        };
        tensor("exp_avg", st.exp_avg);
        tensor("exp_avg_sq", st.exp_avg_sq);
        if (a.options().amsgrad) tensor("max_exp_avg_sq", st.max_exp_avg_sq);
      } catch (const ckpt::mismatch_error& e) {
        ckpt::rethrow_with_prefix(e, at);
      }
      r.merge(here, at);
      a.state()[i] = std::move(st);
    }
  }
  ckpt::report_unexpected(sd, {"state", "param_groups"}, r);
  return r;
}

/// Fixed inputs for comparing predictions between the trainer and predict_linear.
inline std::vector<float> probe_input(std::int64_t row, std::int64_t in) {
  std::vector<float> x(static_cast<std::size_t>(in));
  for (std::int64_t k = 0; k < in; ++k) x[static_cast<std::size_t>(k)] = std::sin(0.7f * static_cast<float>(row * in + k));
  return x;
}

/// Everything a resumed run needs to continue as if it had never stopped.
struct Trainer {
  Linear model;
  Adam optimizer;
  std::int64_t epoch = 0;   // epochs completed
  double loss = 0;          // mean training loss of the last epoch
  std::mt19937_64 rng;      // shuffles the data every epoch
  std::vector<std::int64_t> order;  // the current epoch's sample order
  std::int64_t next_batch = 0;      // position in `order` (0 at an epoch boundary)
  double running_loss = 0;          // sum of this epoch's batch losses so far (0 at a boundary)

  Trainer(const Dataset& d, std::uint64_t seed, Adam::Options o = {0.01, 0.9, 0.999, 1e-8, 0, false, false})
      : model(d.in, d.out, seed), rng(seed), order(static_cast<std::size_t>(d.n)) {
    optimizer = Adam(model.parameters(), o);
    std::iota(order.begin(), order.end(), 0);
  }
  Trainer(const Trainer&) = delete;  // the optimizer points into the model
  Trainer& operator=(const Trainer&) = delete;

  /// Optimizer steps (minibatches) in one epoch over `d`.
  static std::int64_t batches_per_epoch(const Dataset& d, std::int64_t batch = 64) { return (d.n + batch - 1) / batch; }
  /// Optimizer steps taken since the start of training.
  std::int64_t global_step(const Dataset& d, std::int64_t batch = 64) const { return epoch * batches_per_epoch(d, batch) + next_batch; }

  /// One epoch of minibatch training (the rest of it, after a resume inside one); returns the
  /// mean loss.
  double train_epoch(const Dataset& d, std::int64_t batch = 64) {
    train_until(d, std::numeric_limits<std::int64_t>::max(), batch);
    return loss;
  }
  /// Minibatch training until the epoch ends or global_step() reaches `stop_at`, whichever
  /// comes first; true when the epoch ended (`loss` is then its mean over all its batches,
  /// those before a resume included).
  bool train_until(const Dataset& d, std::int64_t stop_at, std::int64_t batch = 64) {
    if (next_batch == 0) std::shuffle(order.begin(), order.end(), rng);
    const std::int64_t nb = batches_per_epoch(d, batch);
    std::vector<float> pred(static_cast<std::size_t>(d.out));
    for (; next_batch < nb && global_step(d, batch) < stop_at; ++next_batch) {
      optimizer.zero_grad();
      auto& gw = optimizer.params()[0].grad;
      auto& gb = optimizer.params()[1].grad;
      const std::int64_t lo = next_batch * batch, hi = std::min(d.n, lo + batch);
      const float scale = 2.0f / static_cast<float>((hi - lo) * d.out);
      float loss_sum = 0;
      for (std::int64_t j = lo; j < hi; ++j) {
        const auto i = order[static_cast<std::size_t>(j)];
        const float* x = &d.x[static_cast<std::size_t>(i * d.in)];
        model.forward(x, pred.data());
        for (std::int64_t o = 0; o < d.out; ++o) {
          const float err = pred[static_cast<std::size_t>(o)] - d.y[static_cast<std::size_t>(i * d.out + o)];
          loss_sum += err * err;
          const float g = scale * err;
          gb[static_cast<std::size_t>(o)] += g;
          for (std::int64_t k = 0; k < d.in; ++k) gw[static_cast<std::size_t>(o * d.in + k)] += g * x[k];
        }
      }
      optimizer.step();
      running_loss += loss_sum / static_cast<float>((hi - lo) * d.out);
    }
    if (next_batch < nb) return false;
    next_batch = 0;
    ++epoch;
    loss = running_loss / static_cast<double>(nb);
    running_loss = 0;
    return true;
  }

  /// 64-bit FNV-1a over the whole training state: weight, bias, every Adam state tensor and
  /// step, the RNG state, the sample order, and epoch, next_batch, loss and running_loss.
  std::uint64_t digest() const {
    std::uint64_t h = 1469598103934665603ull;
    auto add = [&](const void* p, std::size_t n) {
      const auto* b = static_cast<const unsigned char*>(p);
      for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    auto vec = [&](const std::vector<float>& v) { add(v.data(), v.size() * sizeof(float)); };
    vec(model.weight());
    vec(model.bias());
    for (const auto& s : optimizer.state()) {
      add(&s.step, sizeof s.step);
      vec(s.exp_avg);
      vec(s.exp_avg_sq);
      vec(s.max_exp_avg_sq);
    }
    const std::string rng_state = ckpt::to_state_dict(rng).get<std::string>();
    add(rng_state.data(), rng_state.size());
    add(order.data(), order.size() * sizeof(std::int64_t));
    for (const auto* x : {&epoch, &next_batch}) add(x, sizeof *x);
    for (const auto* x : {&loss, &running_loss}) add(x, sizeof *x);
    return h;
  }
};
CKPT_FIELDS(Trainer, model, optimizer, epoch, loss, rng, order, next_batch, running_loss)

}  // namespace linear_adam
