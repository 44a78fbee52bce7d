// ckpt/integrations/torch_optim_groups.hpp — the optimizer kinds of torch_optim.hpp and their
// param_groups in Python's names: writing a group's hyper-parameters in Python's key order,
// reading them back (from a list node of dicts as we write it, or from the JSON value the .pt
// reader makes of a Python-written list) with Python-only keys checked. Part of torch.hpp
// (include that, not this); torch_optim.hpp's top comment describes the layout.
#pragma once

#include <memory>    // options are cloned unique_ptrs
#include <optional>  // kinds, numbers
#include <set>       // keys a group reader consumed
#include <string>    // keys
#include <tuple>     // betas
#include <type_traits>  // const or mutable options
#include <utility>   // std::move
#include <vector>    // groups

#include "torch.hpp"  // torch headers, copy_of

namespace ckpt {
namespace detail::libtorch {

enum class OptimKind { adam, adamw, sgd, rmsprop, adagrad };

inline std::optional<OptimKind> kind_of(const ::torch::optim::Optimizer& o) {
  namespace optim = ::torch::optim;
  if (dynamic_cast<const optim::Adam*>(&o)) return OptimKind::adam;
  if (dynamic_cast<const optim::AdamW*>(&o)) return OptimKind::adamw;
  if (dynamic_cast<const optim::SGD*>(&o)) return OptimKind::sgd;
  if (dynamic_cast<const optim::RMSprop*>(&o)) return OptimKind::rmsprop;
  if (dynamic_cast<const optim::Adagrad*>(&o)) return OptimKind::adagrad;
  return std::nullopt;
}
inline OptimKind kind_or_throw(const ::torch::optim::Optimizer& o) {
  if (auto k = kind_of(o)) return *k;
  throw unsupported_error("this torch::optim optimizer is not supported (Adam, AdamW, SGD, RMSprop and Adagrad are)");
}
inline std::string kind_name(OptimKind k) {
  constexpr const char* names[] = {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad"};
  return names[static_cast<int>(k)];
}

template <class Options, class Base>  // Base: OptimizerOptions, const or not
auto& options_as(Base& o, OptimKind k) {
  using Want = std::conditional_t<std::is_const_v<Base>, const Options, Options>;
  if (auto* p = dynamic_cast<Want*>(&o)) return *p;
  throw unsupported_error("a parameter group of this " + kind_name(k) + " has options of another optimizer");
}

inline Value betas_value(const std::tuple<double, double>& b) { return Value::array({std::get<0>(b), std::get<1>(b)}); }

/// A group's hyper-parameters with Python's names, in Python's order (torch 2.x's keys).
inline std::vector<std::pair<std::string, Value>> group_values(OptimKind k, const ::torch::optim::OptimizerOptions& base) {
  namespace optim = ::torch::optim;
  const Value null = nullptr;
  switch (k) {
    case OptimKind::adam: {
      const auto& o = options_as<optim::AdamOptions>(base, k);
      return {{"lr", o.lr()}, {"betas", betas_value(o.betas())}, {"eps", o.eps()}, {"weight_decay", o.weight_decay()},
              {"amsgrad", o.amsgrad()}, {"maximize", false}, {"foreach", null}, {"capturable", false},
              {"differentiable", false}, {"fused", null}};
    }
    case OptimKind::adamw: {
      const auto& o = options_as<optim::AdamWOptions>(base, k);
      return {{"lr", o.lr()}, {"betas", betas_value(o.betas())}, {"eps", o.eps()}, {"weight_decay", o.weight_decay()},
              {"amsgrad", o.amsgrad()}, {"foreach", null}, {"maximize", false}, {"capturable", false},
              {"differentiable", false}, {"fused", null}};
    }
    case OptimKind::sgd: {
      const auto& o = options_as<optim::SGDOptions>(base, k);
      return {{"lr", o.lr()}, {"momentum", o.momentum()}, {"dampening", o.dampening()}, {"weight_decay", o.weight_decay()},
              {"nesterov", o.nesterov()}, {"maximize", false}, {"foreach", null}, {"differentiable", false}, {"fused", null}};
    }
    case OptimKind::rmsprop: {
      const auto& o = options_as<optim::RMSpropOptions>(base, k);
      return {{"lr", o.lr()}, {"momentum", o.momentum()}, {"alpha", o.alpha()}, {"eps", o.eps()}, {"centered", o.centered()},
              {"weight_decay", o.weight_decay()}, {"capturable", false}, {"foreach", null}, {"maximize", false},
              {"differentiable", false}};
    }
    case OptimKind::adagrad: {
      const auto& o = options_as<optim::AdagradOptions>(base, k);
      return {{"lr", o.lr()}, {"lr_decay", o.lr_decay()}, {"eps", o.eps()}, {"weight_decay", o.weight_decay()},
              {"initial_accumulator_value", o.initial_accumulator_value()}, {"foreach", null}, {"maximize", false},
              {"differentiable", false}, {"fused", null}};
    }
  }
  return {};
}

/// Reads one param group (a JSON object) into a clone of the group's options: each hyper-
/// parameter by its Python name; Python-only keys checked; anything else reported unexpected.
class GroupReader {
 public:
  GroupReader(const Value& g, KeyPath at, const LoadOptions& o, LoadReport& r) : g_(g), at_(std::move(at)), o_(o), r_(r) {}

  template <class F>
  void number(const char* key, F set) {
    if (const Value* v = take(key)) {
      if (const auto d = detail::number_as<double>(*v); d && !v->is_boolean()) set(*d);
      else wrong(key, "a number", *v);
    }
  }
  template <class F>
  void boolean(const char* key, F set) {
    if (const Value* v = take(key)) {
      if (v->is_boolean()) set(v->get<bool>());
      else wrong(key, "true or false", *v);
    }
  }
  template <class F>
  void betas(const char* key, F set) {
    if (const Value* v = take(key)) {
      std::optional<double> b1, b2;
      if (v->is_array() && v->size() == 2) b1 = detail::number_as<double>((*v)[0]), b2 = detail::number_as<double>((*v)[1]);
      if (b1 && b2) set(std::make_tuple(*b1, *b2));
      else wrong(key, "a pair of numbers", *v);
    }
  }
  /// Python-only keys and the other group keys; call last.
  void finish(const std::string& optimizer) {
    for (const auto& [key, v] : g_.items()) {
      if (seen_.count(key) || key == "params") continue;
      if (key == "foreach" || key == "fused" || key == "capturable") {
        if (!v.is_null() && !v.is_boolean()) wrong(key.c_str(), "null, true or false", v);
      } else if (key == "maximize" || key == "differentiable" || key == "decoupled_weight_decay") {
        if (!(v.is_boolean() && !v.get<bool>()) && !v.is_null())
          refuse(key, "libtorch's " + optimizer + " has no '" + key + "' option: it always behaves as " + key + "=False", "false", v);
      } else if (key == "initial_lr") {  // set by Python's LR schedulers; libtorch has none
        if (!detail::number_as<double>(v)) wrong(key.c_str(), "a number", v);
      } else {
        r_.unexpected.push_back((at_ / key).str());
      }
    }
  }

 private:
  const Value* take(const char* key) {
    seen_.emplace(key);
    const auto it = g_.find(key);
    if (it == g_.end()) {
      r_.missing.push_back((at_ / key).str());
      return nullptr;
    }
    return &*it;
  }
  void wrong(const char* key, const std::string& want, const Value& got) { refuse(key, "wrong kind of value", want, got); }
  void refuse(const std::string& key, const std::string& why, const std::string& want, const Value& got) {
    const std::string k = (at_ / key).str();
    if (!o_.skip_mismatched) throw mismatch_error(why, k, want, detail::json_excerpt(got));
    r_.mismatched.push_back(k + " (expected " + want + ", got " + detail::json_excerpt(got) + ")");
  }

  const Value& g_;
  KeyPath at_;
  const LoadOptions& o_;
  LoadReport& r_;
  std::set<std::string> seen_;
};

/// A clone of `base` with the group `g`'s hyper-parameters.
inline std::unique_ptr<::torch::optim::OptimizerOptions> read_group(OptimKind k, const ::torch::optim::OptimizerOptions& base, const Value& g,
                                                                   const KeyPath& at, const LoadOptions& lo, LoadReport& r) {
  namespace optim = ::torch::optim;
  auto out = base.clone();
  GroupReader rd(g, at, lo, r);
  auto common = [&](auto& o) {
    rd.number("lr", [&](double v) { o.lr(v); });
    rd.number("eps", [&](double v) { o.eps(v); });
    rd.number("weight_decay", [&](double v) { o.weight_decay(v); });
  };
  switch (k) {
    case OptimKind::adam:
    case OptimKind::adamw: {
      auto body = [&](auto& o) {
        common(o);
        rd.betas("betas", [&](auto b) { o.betas(b); });
        rd.boolean("amsgrad", [&](bool v) { o.amsgrad(v); });
      };
      if (k == OptimKind::adam) body(options_as<optim::AdamOptions>(*out, k));
      else body(options_as<optim::AdamWOptions>(*out, k));
      break;
    }
    case OptimKind::sgd: {
      auto& o = options_as<optim::SGDOptions>(*out, k);
      rd.number("lr", [&](double v) { o.lr(v); });
      rd.number("weight_decay", [&](double v) { o.weight_decay(v); });
      rd.number("momentum", [&](double v) { o.momentum(v); });
      rd.number("dampening", [&](double v) { o.dampening(v); });
      rd.boolean("nesterov", [&](bool v) { o.nesterov(v); });
      break;
    }
    case OptimKind::rmsprop: {
      auto& o = options_as<optim::RMSpropOptions>(*out, k);
      common(o);
      rd.number("momentum", [&](double v) { o.momentum(v); });
      rd.number("alpha", [&](double v) { o.alpha(v); });
      rd.boolean("centered", [&](bool v) { o.centered(v); });
      break;
    }
    case OptimKind::adagrad: {
      auto& o = options_as<optim::AdagradOptions>(*out, k);
      common(o);
      rd.number("lr_decay", [&](double v) { o.lr_decay(v); });
      rd.number("initial_accumulator_value", [&](double v) { o.initial_accumulator_value(v); });
      break;
    }
  }
  rd.finish(kind_name(k));
  return out;
}

/// `n` as a dict node: itself, or the children of a JSON object value (the .pt reader makes a
/// Python dict holding no tensor one value: an optimizer whose state is empty, SGD's
/// {"momentum_buffer": None}); nullopt for anything else.
inline std::optional<StateDict> as_dict(const StateDict& n) {
  if (n.is_dict()) return n;
  if (!n.is_value() || !n.value().is_object()) return std::nullopt;
  StateDict d;
  for (const auto& [key, v] : n.value().items()) d.set(key, StateDict(Value(v)));
  return d;
}

/// param_groups as a list of JSON objects, from the JSON array the .pt reader makes of a
/// Python-written list, or from a list node of dict nodes (as we write it).
inline std::vector<Value> groups_of(const StateDict& node) {
  std::vector<Value> out;
  auto as_object = [](const StateDict& g, const KeyPath& at) {
    if (g.is_value() && g.value().is_object()) return g.value();
    if (!g.is_dict()) throw mismatch_error("wrong kind of value", at.str(), "a parameter group (dict)", node_desc(g));
    Value obj = Value::object();
    for (const auto& it : g.items()) {
      if (it.value.is_value()) obj[it.key] = it.value.value();
      else if (it.value.is_tensor() && it.value.tensor().numel() == 1)  // torch 2.x may keep lr as a tensor
        obj[it.key] = copy_of(it.value.tensor()).to(at::kDouble).item<double>();
      else throw mismatch_error("wrong kind of value", (at / it.key).str(), "a number, bool, list or null", node_desc(it.value));
    }
    return obj;
  };
  if (node.is_value() && node.value().is_array()) {
    for (const auto& g : node.value()) {
      if (!g.is_object()) throw mismatch_error("wrong kind of value", "param_groups", "a list of dicts", detail::json_excerpt(node.value()));
      out.push_back(g);
    }
  } else if (node.is_dict()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      const StateDict* g = node.find_key(std::to_string(i));
      if (!g) throw mismatch_error("param_groups is not a list", "param_groups", "keys 0.." + std::to_string(node.size() - 1), "key '" + node.items()[i].key + "'");
      out.push_back(as_object(*g, KeyPath{"param_groups", std::to_string(i)}));
    }
  } else {
    throw mismatch_error("wrong kind of value", "param_groups", "a list of parameter groups", node_desc(node));
  }
  return out;
}

}  // namespace detail::libtorch
}  // namespace ckpt
