// ckpt/integrations/torch_optim.hpp — torch::optim::{Adam, AdamW, SGD, RMSprop, Adagrad} as
// Checkpointables in Python's `optimizer.state_dict()` layout (included by torch.hpp):
//   {"state": {0: {"step": 0-d float32 tensor, "exp_avg": ..., ...}, 1: ...},   // int keys
//    "param_groups": [{"lr": ..., "betas": [..], ..., "params": [0, 1, ...]}, ...]}
// Parameters are numbered across param_groups in order, as Python numbers them; libtorch keys
// its state by TensorImpl address, so loading rebuilds that map for the current parameters.
// State tensors and hyper-parameters carry Python's names; `step` is written as torch 2.x
// writes it (a float32 0-d tensor; SGD has none) and read from a tensor or a number.
// param_groups is written as a list node of dict nodes in Python's key order (so torch.load
// shows the dict Python would have), and read from that or from the single JSON value the .pt
// reader makes of a Python-written list (its keys sorted: order does not matter to either side).
// Python-only group keys are written with the values that mean libtorch's behaviour and on
// load accepted when they hold it (foreach, fused, capturable: any; maximize, differentiable,
// decoupled_weight_decay: false; initial_lr, an LR scheduler's: ignored), refused with a
// mismatch_error naming the key otherwise.
#pragma once

#include <algorithm>    // std::find
#include <charconv>     // state keys are decimal ids
#include <cmath>        // integral steps
#include <map>          // a parameter's state tensors by name, parameters by saved id
#include <memory>       // libtorch's options and states are unique_ptrs
#include <optional>     // a state's step
#include <sstream>      // torch 1.x state keys are printed addresses
#include <string>       // keys
#include <type_traits>  // state key type
#include <utility>      // std::move
#include <vector>       // state tensor names

#include "torch.hpp"               // at::Tensor conversions, torch headers
#include "torch_optim_groups.hpp"  // optimizer kinds, param_groups

namespace ckpt {
namespace detail::libtorch {

using StateMap = std::remove_cvref_t<decltype(std::declval<::torch::optim::Optimizer&>().state())>;
/// libtorch's key for a parameter's state: its TensorImpl address, printed in torch 1.x (as
/// c10::guts::to_string prints it), the pointer itself in 2.x.
template <class Map = StateMap>  // a template, so that only the branch for this libtorch is compiled
typename Map::key_type state_key(const at::Tensor& p) {
  using K = typename Map::key_type;
  if constexpr (std::is_same_v<K, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return static_cast<K>(p.unsafeGetTensorImpl());
  }
}

// ---- per-parameter state ------------------------------------------------------------------

/// Python's names of a state's tensors, in Python's order.
inline std::vector<std::string> state_tensor_names(OptimKind k) {
  switch (k) {
    case OptimKind::adam:
    case OptimKind::adamw: return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    case OptimKind::sgd: return {"momentum_buffer"};
    case OptimKind::rmsprop: return {"square_avg", "momentum_buffer", "grad_avg"};
    case OptimKind::adagrad: return {"sum"};
  }
  return {};
}
inline bool has_step(OptimKind k) { return k != OptimKind::sgd; }
/// The state tensors a step needs under options `o` (SGD makes its buffer on the first step).
inline std::vector<std::string> required_tensors(OptimKind k, const ::torch::optim::OptimizerOptions& o) {
  namespace optim = ::torch::optim;
  switch (k) {
    case OptimKind::adam:
    case OptimKind::adamw: {
      std::vector<std::string> v{"exp_avg", "exp_avg_sq"};
      if (k == OptimKind::adam ? options_as<optim::AdamOptions>(o, k).amsgrad() : options_as<optim::AdamWOptions>(o, k).amsgrad())
        v.emplace_back("max_exp_avg_sq");
      return v;
    }
    case OptimKind::sgd: return {};
    case OptimKind::rmsprop: {
      const auto& r = options_as<optim::RMSpropOptions>(o, k);
      std::vector<std::string> v{"square_avg"};
      if (r.momentum() > 0) v.emplace_back("momentum_buffer");
      if (r.centered()) v.emplace_back("grad_avg");
      return v;
    }
    case OptimKind::adagrad: return {"sum"};
  }
  return {};
}

/// A step from a number or a one-element tensor (torch 2.x: float32 0-d; 1.13's RMSprop: an
/// int; capturable: shape (1,)): a non-negative integer, else nullopt.
inline std::optional<std::int64_t> step_of(const StateDict& n) {
  std::optional<double> d;
  if (n.is_value() && !n.value().is_boolean()) d = detail::number_as<double>(n.value());
  else if (n.is_tensor() && n.tensor().numel() == 1 && n.tensor().dtype() != DType::boolean && scalar_type_of(n.tensor().dtype()))
    d = copy_of(n.tensor()).to(at::kDouble).item<double>();
  if (!d || !(*d >= 0) || *d != std::floor(*d) || *d > 9.0e15) return std::nullopt;
  return static_cast<std::int64_t>(*d);
}

/// A state tensor for `param`: its shape, its device, its dtype (floating point is cast to the
/// parameter's, as Python's load_state_dict does; other dtypes must match).
inline at::Tensor state_tensor(const Tensor& src, const at::Tensor& param) {
  const Shape want = shape_of(param);
  if (src.shape() != want) throw mismatch_error("shape mismatch", "", shape_string(want), shape_string(src.shape()));
  at::Tensor t = copy_of(src);
  if (t.scalar_type() != param.scalar_type()) {
    if (!(t.is_floating_point() && param.is_floating_point()))
      throw mismatch_error("dtype mismatch", "", c10::toString(param.scalar_type()), std::string(name(src.dtype())));
    t = t.to(param.scalar_type());
  }
  return t.to(param.device());
}

/// One parameter's state as a file holds it.
struct ParamState {
  std::int64_t step = 0;
  std::map<std::string, at::Tensor> tensors;
  at::Tensor get(const std::string& n) const {
    const auto it = tensors.find(n);
    return it == tensors.end() ? at::Tensor() : it->second;
  }
};

/// Read the state of `param` at `at` ("state.<id>"), a dict node or (all values) a JSON
/// object. Unknown keys are reported unexpected; without a required entry the state is
/// reported missing and not loaded (nullopt). Mismatches throw with keys relative to `at`.
inline std::optional<ParamState> read_param_state(OptimKind k, const ::torch::optim::OptimizerOptions& opts, const StateDict& node,
                                                  const at::Tensor& param, const KeyPath& at, LoadReport& r) {
  const auto entry = as_dict(node);
  if (!entry) throw mismatch_error("wrong kind of value", "", "a parameter's state (dict)", node_desc(node));
  ParamState ps;
  bool stepped = false;
  const auto names = state_tensor_names(k);
  for (const auto& [key, v] : entry->items()) {
    if (key == "step" && has_step(k)) {
      const auto s = step_of(v);
      if (!s) throw mismatch_error("wrong kind of value", "step", "a non-negative integral step (number or one-element tensor)", node_desc(v));
      ps.step = *s;
      stepped = true;
    } else if (std::find(names.begin(), names.end(), key) != names.end()) {
      if (v.is_value() && v.value().is_null()) continue;  // torch 1.13's SGD writes momentum_buffer None
      if (!v.is_tensor()) throw mismatch_error("wrong kind of value", key, "tensor", node_desc(v));
      try {
        ps.tensors[key] = state_tensor(v.tensor(), param);
      } catch (const mismatch_error& e) {
        rethrow_with_prefix(e, KeyPath{key});
      }
    } else {
      r.unexpected.push_back((at / key).str());
    }
  }
  bool complete = true;
  if (has_step(k) && !stepped) {
    r.missing.push_back((at / "step").str());
    complete = false;
  }
  for (const auto& n : required_tensors(k, opts)) {
    if (!ps.tensors.count(n)) {
      r.missing.push_back((at / n).str());
      complete = false;
    }
  }
  if (!complete) return std::nullopt;
  return ps;
}

/// libtorch's state object for a read state (null for an SGD state without a buffer: libtorch
/// makes it on the next step, as Python does for a None buffer).
inline std::unique_ptr<::torch::optim::OptimizerParamState> make_param_state(OptimKind k, const ParamState& s) {
  namespace optim = ::torch::optim;
  switch (k) {
    case OptimKind::adam: {
      auto p = std::make_unique<optim::AdamParamState>();
      p->step(s.step).exp_avg(s.get("exp_avg")).exp_avg_sq(s.get("exp_avg_sq")).max_exp_avg_sq(s.get("max_exp_avg_sq"));
      return p;
    }
    case OptimKind::adamw: {
      auto p = std::make_unique<optim::AdamWParamState>();
      p->step(s.step).exp_avg(s.get("exp_avg")).exp_avg_sq(s.get("exp_avg_sq")).max_exp_avg_sq(s.get("max_exp_avg_sq"));
      return p;
    }
    case OptimKind::sgd: {
      if (!s.get("momentum_buffer").defined()) return nullptr;
      auto p = std::make_unique<optim::SGDParamState>();
      p->momentum_buffer(s.get("momentum_buffer"));
      return p;
    }
    case OptimKind::rmsprop: {
      auto p = std::make_unique<optim::RMSpropParamState>();
      p->step(s.step).square_avg(s.get("square_avg")).momentum_buffer(s.get("momentum_buffer")).grad_avg(s.get("grad_avg"));
      return p;
    }
    case OptimKind::adagrad: {
      auto p = std::make_unique<optim::AdagradParamState>();
      p->step(s.step).sum(s.get("sum"));
      return p;
    }
  }
  return nullptr;
}

template <class S>
const S& state_as(const ::torch::optim::OptimizerParamState& s, OptimKind k) {
  if (const auto* p = dynamic_cast<const S*>(&s)) return *p;
  throw unsupported_error("a parameter state of this " + kind_name(k) + " belongs to another optimizer");
}

/// One parameter's state in Python's names and order; `where` names it in errors.
inline StateDict param_state_dict(OptimKind k, const ::torch::optim::OptimizerParamState& base, const KeyPath& where) {
  namespace optim = ::torch::optim;
  StateDict e;
  auto step = [&](std::int64_t s) { e.set("step", StateDict(Tensor::scalar(static_cast<float>(s)))); };
  auto tensor = [&](const char* n, const at::Tensor& t) {
    if (t.defined()) e.set(n, StateDict(to_ckpt(t, (where / n).str())));
  };
  switch (k) {
    case OptimKind::adam:
    case OptimKind::adamw: {
      auto body = [&](const auto& s) {
        step(s.step());
        tensor("exp_avg", s.exp_avg());
        tensor("exp_avg_sq", s.exp_avg_sq());
        tensor("max_exp_avg_sq", s.max_exp_avg_sq());
      };
      if (k == OptimKind::adam) body(state_as<optim::AdamParamState>(base, k));
      else body(state_as<optim::AdamWParamState>(base, k));
      break;
    }
    case OptimKind::sgd: tensor("momentum_buffer", state_as<optim::SGDParamState>(base, k).momentum_buffer()); break;
    case OptimKind::rmsprop: {
      const auto& s = state_as<optim::RMSpropParamState>(base, k);
      step(s.step());
      tensor("square_avg", s.square_avg());
      tensor("momentum_buffer", s.momentum_buffer());
      tensor("grad_avg", s.grad_avg());
      break;
    }
    case OptimKind::adagrad: {
      const auto& s = state_as<optim::AdagradParamState>(base, k);
      step(s.step());
      tensor("sum", s.sum());
      break;
    }
  }
  return e;
}

// ---- the whole optimizer ------------------------------------------------------------------

inline StateDict optimizer_state_dict(const ::torch::optim::Optimizer& opt) {
  const OptimKind k = kind_or_throw(opt);
  StateDict state = StateDict::dict(Container::int_dict);
  StateDict groups = StateDict::dict(Container::list);
  std::int64_t index = 0;
  for (std::size_t gi = 0; gi < opt.param_groups().size(); ++gi) {
    const auto& g = opt.param_groups()[gi];
    Value ids = Value::array();
    for (const auto& p : g.params()) {
      const auto it = opt.state().find(state_key(p));
      if (it != opt.state().end() && it->second)
        state.set(std::to_string(index), param_state_dict(k, *it->second, KeyPath{"state", std::to_string(index)}));
      ids.push_back(index++);
    }
    StateDict gd;
    for (auto& [key, v] : group_values(k, g.options())) gd.set(key, StateDict(std::move(v)));
    gd.set("params", StateDict(std::move(ids)));
    groups.set(std::to_string(gi), std::move(gd));
  }
  StateDict sd;
  sd.set("state", std::move(state));
  sd.set("param_groups", std::move(groups));
  return sd;
}

/// Python's Optimizer.load_state_dict: groups matched by position, the saved parameter ids
/// zipped with the current parameters; all read and checked before the optimizer changes.
inline LoadReport load_optimizer(::torch::optim::Optimizer& opt, const StateDict& file, const LoadOptions& o) {
  namespace optim = ::torch::optim;
  const OptimKind k = kind_or_throw(opt);
  const auto root = as_dict(file);
  if (!root) expect_dict(file, "a torch::optim::" + kind_name(k));  // throws
  const StateDict& sd = *root;
  LoadReport r;
  auto& groups = opt.param_groups();
  auto refuse = [&](const std::string& key, const std::string& why, const std::string& want, const std::string& got) {
    if (!o.skip_mismatched) throw mismatch_error(why, key, want, got);
    r.mismatched.push_back(key + " (expected " + want + ", got " + got + ")");
    return r;
  };

  std::map<std::int64_t, std::pair<std::size_t, at::Tensor>> by_id;  // saved id -> (group, parameter)
  std::vector<std::unique_ptr<optim::OptimizerOptions>> options(groups.size());
  const StateDict* pg = sd.find_key("param_groups");
  if (!pg) {
    r.missing.emplace_back("param_groups");
    std::int64_t id = 0;
    for (std::size_t gi = 0; gi < groups.size(); ++gi)
      for (const auto& p : groups[gi].params()) by_id.emplace(id++, std::make_pair(gi, p));
  } else {
    const auto file_groups = groups_of(*pg);
    if (file_groups.size() != groups.size())
      return refuse("param_groups", "the number of parameter groups differs", std::to_string(groups.size()), std::to_string(file_groups.size()));
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
      const KeyPath at{"param_groups", std::to_string(gi)};
      const Value& g = file_groups[gi];
      const auto ids = g.find("params");
      const auto n = groups[gi].params().size();
      if (ids == g.end() || !ids->is_array() || ids->size() != n)
        return refuse((at / "params").str(), "the parameter group's size differs", "a list of " + std::to_string(n) + " parameter ids",
                      ids == g.end() ? "none" : detail::json_excerpt(*ids));
      for (std::size_t j = 0; j < n; ++j) {
        const auto id = detail::integer_as<std::int64_t>((*ids)[j]);
        if (!id || !by_id.emplace(*id, std::make_pair(gi, groups[gi].params()[j])).second)
          return refuse((at / "params").str(), "parameter ids must be distinct integers", "distinct integers", detail::json_excerpt(*ids));
      }
      options[gi] = read_group(k, groups[gi].options(), g, at, o, r);
    }
  }

  std::vector<std::pair<at::Tensor, ParamState>> loaded;
  const StateDict* st = sd.find_key("state");
  const auto states = st ? as_dict(*st) : std::nullopt;
  if (!st) {
    r.missing.emplace_back("state");
  } else if (!states) {
    return refuse("state", "wrong kind of value", "a dict of parameter states", node_desc(*st));
  } else {
    for (const auto& it : states->items()) {
      const KeyPath at{"state", it.key};
      std::int64_t id = -1;
      const auto [end, ec] = std::from_chars(it.key.data(), it.key.data() + it.key.size(), id);
      const auto found = ec == std::errc{} && end == it.key.data() + it.key.size() ? by_id.find(id) : by_id.end();
      if (found == by_id.end()) {
        r.unexpected.push_back(at.str());
        continue;
      }
      const auto& [gi, param] = found->second;
      try {
        const auto& gopts = options[gi] ? *options[gi] : groups[gi].options();
        if (auto ps = read_param_state(k, gopts, it.value, param, at, r)) loaded.emplace_back(param, std::move(*ps));
      } catch (const mismatch_error& e) {
        if (!o.skip_mismatched) rethrow_with_prefix(e, at);
        r.mismatched.push_back((e.key().empty() ? at.str() : at.str() + "." + e.key()) + " (expected " + e.expected() + ", got " + e.got() + ")");
      }
    }
  }
  report_unexpected(sd, {"state", "param_groups"}, r);
  if (o.strict && (!r.missing.empty() || !r.unexpected.empty())) return r;

  for (std::size_t gi = 0; gi < groups.size(); ++gi)
    if (options[gi]) groups[gi].set_options(std::move(options[gi]));
  auto& state = opt.state();
  state.clear();
  for (const auto& [param, ps] : loaded)
    if (auto s = make_param_state(k, ps)) state[state_key(param)] = std::move(s);
  if (k == OptimKind::adagrad) {  // libtorch's Adagrad expects a state for every parameter (made by its constructor)
    for (auto& g : groups) {
      const double init = options_as<optim::AdagradOptions>(g.options(), k).initial_accumulator_value();
      for (const auto& p : g.params()) {
        auto& s = state[state_key(p)];
        if (!s) {
          auto a = std::make_unique<optim::AdagradParamState>();
          a->step(0).sum(::torch::full_like(p, init, at::MemoryFormat::Preserve));
          s = std::move(a);
        }
      }
    }
  }
  return r;
}

}  // namespace detail::libtorch

/// torch::optim::{Adam, AdamW, SGD, RMSprop, Adagrad} (also through a torch::optim::Optimizer
/// reference): Python's optimizer.state_dict() layout (see the file comment). Others throw
/// unsupported_error.
template <class T>
  requires std::derived_from<T, ::torch::optim::Optimizer>
struct checkpoint_traits<T> {
  static StateDict state_dict(const T& opt) { return detail::libtorch::optimizer_state_dict(opt); }
  static LoadReport load_state_dict(T& opt, const StateDict& sd, const LoadOptions& o) { return detail::libtorch::load_optimizer(opt, sd, o); }
};

}  // namespace ckpt
