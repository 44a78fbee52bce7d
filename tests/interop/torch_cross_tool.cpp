// The C++ side of tests/interop/torch_cross_resume.py, built on the training example's own
// types (examples/linear_adam.hpp), so it sees a checkpoint exactly as train_linear does:
//   torch_cross_tool state CKPT SEED OUT.pt      the trainer state restored from CKPT (any format),
//                                                written back out: what torch must equal bit for bit
//   torch_cross_tool plan CKPT SEED EPOCHS OUT.pt  the data, the sample order of each of the next
//                                                EPOCHS epochs (the trainer's RNG, advanced as
//                                                train_epoch would), and the RNG state after them
//   torch_cross_tool step CKPT SEED OUT.pt       one Adam step on rows 0..63, from CKPT's state
#include <cstdio>
#include <iostream>

#include "linear_adam.hpp"

using namespace linear_adam;
namespace fs = std::filesystem;

namespace {
std::unique_ptr<Trainer> restore(const fs::path& ckpt, const Dataset& d, std::uint64_t seed) {
  // train_linear's files hold the Trainer's fields at the top level, under PyTorch's recipe
  // names with --layout torch, next to the manager's save_counter: map them back.
  auto t = std::make_unique<Trainer>(d, seed);
  ckpt::StateDict sd = ckpt::load(ckpt);
  ckpt::StateDict fields;
  for (const auto& item : sd.items()) {
    if (item.key == "save_counter") continue;
    const std::string key = item.key == "model_state_dict" ? "model" : item.key == "optimizer_state_dict" ? "optimizer" : item.key;
    fields.set(key, item.value);
  }
  const ckpt::LoadReport r = ckpt::load_state_dict(*t, fields);
  if (!r.ok()) throw ckpt::key_error("checkpoint does not match the trainer (" + r.summary() + ")", ckpt.string());
  return t;
}
ckpt::Tensor f32(const std::vector<float>& v, ckpt::Shape shape) {
  return ckpt::Tensor::copy_of({ckpt::DType::f32, std::move(shape), reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(float)});
}
ckpt::StateDict state_of(const Trainer& t) {
  ckpt::StateDict sd;
  sd.set("model", ckpt::to_state_dict(t.model));
  sd.set("optimizer", ckpt::to_state_dict(t.optimizer));
  return sd;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() < 4) throw std::runtime_error("usage: state|plan|step CKPT SEED ... OUT");
    const std::uint64_t seed = std::stoull(a[2]);
    const Dataset d = Dataset::synthetic(seed);
    auto t = restore(a[1], d, seed);
    if (a[0] == "state") {
      ckpt::StateDict sd = state_of(*t);
      sd["epoch"] = t->epoch;
      sd["loss"] = t->loss;
      ckpt::save(a[3], sd);
    } else if (a[0] == "plan" && a.size() == 5) {
      const int epochs = std::stoi(a[3]);
      if (t->next_batch != 0) throw std::runtime_error("plan needs a checkpoint at an epoch boundary");
      ckpt::StateDict sd;
      sd.set("x", f32(d.x, {d.n, d.in}));
      sd.set("y", f32(d.y, {d.n, d.out}));
      ckpt::Tensor orders(ckpt::DType::i64, {epochs, d.n});
      auto o = orders.mutable_values<std::int64_t>();
      for (int e = 0; e < epochs; ++e) {  // what train_epoch does at each epoch start
        std::shuffle(t->order.begin(), t->order.end(), t->rng);
        std::copy(t->order.begin(), t->order.end(), o.begin() + static_cast<std::ptrdiff_t>(e * d.n));
      }
      sd.set("orders", orders);
      sd["rng_after"] = ckpt::to_state_dict(t->rng).get<std::string>();
      sd["batch"] = 64;
      ckpt::save(a[4], sd);
    } else if (a[0] == "step") {
      // one minibatch of train_epoch's loop, on rows 0..63 in order
      t->optimizer.zero_grad();
      auto& gw = t->optimizer.params()[0].grad;
      auto& gb = t->optimizer.params()[1].grad;
      const std::int64_t rows = 64;
      const float scale = 2.0f / static_cast<float>(rows * d.out);
      std::vector<float> pred(static_cast<std::size_t>(d.out));
      for (std::int64_t i = 0; i < rows; ++i) {
        const float* x = &d.x[static_cast<std::size_t>(i * d.in)];
        t->model.forward(x, pred.data());
        for (std::int64_t o = 0; o < d.out; ++o) {
          const float g = scale * (pred[static_cast<std::size_t>(o)] - d.y[static_cast<std::size_t>(i * d.out + o)]);
          gb[static_cast<std::size_t>(o)] += g;
          for (std::int64_t k = 0; k < d.in; ++k) gw[static_cast<std::size_t>(o * d.in + k)] += g * x[k];
        }
      }
      t->optimizer.step();
      ckpt::save(a[3], state_of(*t));
    } else {
      throw std::runtime_error("unknown command " + a[0]);
    }
    std::cout << a[0] << " ok\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
