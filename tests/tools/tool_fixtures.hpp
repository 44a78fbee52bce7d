// Checkpoints the CLI tests write with the library: a model-and-optimizer tree with dotted keys,
// an int_dict, a list value, every common dtype, a 0-d and an empty tensor and special values;
// and a loop over every backend in ckpt::builtin_formats that writes the richest variant of it
// the backend can hold (whole tree, tensors only, or one tensor at the root).
#pragma once

#include <ckpt/ckpt.hpp>
#include <ckpt/manager.hpp>
#include <limits>
#include <optional>
#include <tuple>
#include <utility>

#include "test_util.hpp"

namespace tool_test {
namespace fs = std::filesystem;
using ckpt::DType;

inline const std::vector<float>& special_values() {
  static const std::vector<float> v{1.0f, 2.0f, 3.0f, 4.0f, std::numeric_limits<float>::quiet_NaN(),
                                    std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), 0.0f, -0.0f};
  return v;
}

inline ckpt::StateDict model(std::uint64_t seed = 1) {
  using ckpt_test::random_tensor;
  ckpt::StateDict sd;
  sd["model"].set("0.weight", random_tensor(DType::f32, {4, 3}, seed + 1));  // a flat dotted key
  sd["model"].set("0.bias", random_tensor(DType::f32, {4}, seed + 2));
  sd["model.norm.running_mean"] = random_tensor(DType::f64, {4}, seed + 3);
  sd["model.norm.num_batches_tracked"] = ckpt::Tensor::scalar<std::int64_t>(7);
  sd["emb"] = random_tensor(DType::bf16, {5, 2}, seed + 4);
  sd["half"] = random_tensor(DType::f16, {3}, seed + 5);
  sd["mask"] = random_tensor(DType::boolean, {6}, seed + 6);
  sd["ids"] = ckpt::Tensor::from<std::int32_t>({-5, 0, 12});
  sd["bytes"] = random_tensor(DType::u8, {8}, seed + 7);
  sd["empty"] = ckpt::Tensor(DType::f32, {0, 3});
  sd["zeros"] = ckpt::Tensor(DType::f32, {256});
  sd["special"] = ckpt::Tensor::from<float>(std::span<const float>(special_values()));
  ckpt::StateDict state = ckpt::StateDict::dict(ckpt::Container::int_dict);
  state["0.step"] = 3;
  state["0.exp_avg"] = random_tensor(DType::f32, {4, 3}, seed + 8);
  sd["optimizer"].set("state", state);
  sd["optimizer"].set("param_groups", ckpt::Value::parse(R"([{"lr": 0.001, "params": [0, 1]}])"));
  sd["epoch"] = 3;
  sd["name"] = "tiny";
  return sd;
}

/// The tensors of `sd` only (value leaves dropped), same tree otherwise.
inline ckpt::StateDict tensors_only(const ckpt::StateDict& sd) {
  if (!sd.is_dict()) return sd;
  ckpt::StateDict out = ckpt::StateDict::dict(sd.container());
  for (const auto& it : sd.items()) {
    if (it.value.is_value()) continue;
    out.set(it.key, it.value.is_dict() ? tensors_only(it.value) : it.value);
  }
  return out;
}

template <class Fn>
void for_each_format(Fn&& fn) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (fn(std::tuple_element_t<I, ckpt::builtin_formats>{}), ...);
  }(std::make_index_sequence<std::tuple_size_v<ckpt::builtin_formats>>{});
}

template <class F>
std::string name_of() {
  return std::string(ckpt::archive_traits<F>::name);
}

/// Where a checkpoint of format F called `stem` goes in `dir`.
template <class F>
fs::path path_for(const fs::path& dir, const std::string& stem) {
  if constexpr (ckpt::archive_traits<F>::extensions.size() > 0) return dir / (stem + std::string(ckpt::archive_traits<F>::extensions[0]));
  else return dir / (stem + "." + name_of<F>());
}

/// Save `sd` with F; false when the backend refuses it (unsupported_error / mismatch_error).
template <class F>
bool try_save(const fs::path& p, const ckpt::StateDict& sd) {
  try {
    ckpt::save_as<F>(p, sd);
    return true;
  } catch (const ckpt::unsupported_error&) {
  } catch (const ckpt::mismatch_error&) {
  }
  return false;
}

/// Write the richest variant of model() that F holds: the whole tree, its tensors only, or
/// one tensor at the root. Returns what was written.
template <class F>
ckpt::StateDict write_fixture(const fs::path& p, std::uint64_t seed = 1) {
  const ckpt::StateDict full = model(seed);
  if (try_save<F>(p, full)) return full;
  const ckpt::StateDict tens = tensors_only(full);
  if (try_save<F>(p, tens)) return tens;
  ckpt::StateDict root(ckpt_test::random_tensor(DType::f32, {3, 4}, seed + 100));
  ckpt::save_as<F>(p, root);
  return root;
}

/// A CheckpointManager directory with steps 1..n (metrics loss = 1/step) in `format`.
inline void write_manager_dir(const fs::path& dir, int n, ckpt::Backend format = {}) {
  struct Net {
    std::vector<float> w = std::vector<float>(32, 0.0f);
    std::int64_t seen = 0;
  };
  Net net;
  struct Hook {
    Net* n;
    ckpt::StateDict state_dict() const {
      ckpt::StateDict s;
      s["w"] = ckpt::Tensor::from<float>(std::span<const float>(n->w));
      s["seen"] = n->seen;
      return s;
    }
    ckpt::LoadReport load_state_dict(const ckpt::StateDict&, const ckpt::LoadOptions&) { return {}; }
  } hook{&net};
  ckpt::Checkpoint ck{{"net", hook}};
  ckpt::ManagerOptions mo;
  mo.max_to_keep = std::nullopt;
  mo.save_options.fsync = false;
  mo.format = std::move(format);
  ckpt::CheckpointManager mgr(dir, ck, mo);
  for (int s = 1; s <= n; ++s) {
    for (auto& x : net.w) x += 0.5f;
    net.seen = s;
    mgr.save(s, {{"loss", 1.0 / s}});
  }
}

}  // namespace tool_test
