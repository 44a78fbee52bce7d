// torch_integration_tool — the libtorch side of tests/interop/torch_integration.py: the same
// small convnet (Conv2d, BatchNorm2d, Linear) and optimizers the script builds in Python,
// checkpointed through include/ckpt/integrations/torch.hpp.
//
//   torch_integration_tool data OUT                      synthetic images x [48,1,6,6], labels y [48]
//   torch_integration_tool train OPT DATA K OUT          a fresh net + optimizer OPT, K steps, then
//                                                        OUT = {model_state_dict, optimizer_state_dict, epoch}
//   torch_integration_tool resume OPT DATA IN N OUT      a fresh net (other weights) + OPT's kind with default
//                                                        options, restored from IN (assert_consumed: every
//                                                        value used, nothing missing), N more steps, OUT as above
//   torch_integration_tool model IN OUT                  IN's model state (its model_state_dict, or its root)
//                                                        loaded strictly into a fresh net, saved to OUT
//
// Step i trains on batch i % 6 (8 samples). One thread, as on the Python side.
#include <ckpt/ckpt.hpp>
#include <ckpt/integrations/torch.hpp>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl()
      // No bias before BatchNorm (as nets are built): BN cancels it, so its gradient is rounding
      // noise that Adam scales up to a full step of either sign — torch 2.x's Python Adam rounds
      // differently from C++'s, and that noise alone made the two sides differ by 1e-2.
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1).bias(false)))),
        bn(register_module("bn", torch::nn::BatchNorm2d(4))),
        fc(register_module("fc", torch::nn::Linear(4 * 6 * 6, 3))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc(torch::relu(bn(conv(x))).flatten(1)); }
  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
  torch::nn::Linear fc;
};
TORCH_MODULE(Net);

/// The optimizers of the script's CONFIGS; `defaults` gives the kind with default options
/// (what a resume builds: everything else comes from the file's param_groups).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& name, Net& net, bool defaults) {
  namespace o = torch::optim;
  const auto p = net->parameters();
  const std::string kind = name.substr(0, name.find('-'));
  if (defaults) {
    if (kind == "adam") return std::make_unique<o::Adam>(p, o::AdamOptions(1.0));
    if (kind == "adamw") return std::make_unique<o::AdamW>(p, o::AdamWOptions(1.0));
    if (kind == "sgd") return std::make_unique<o::SGD>(p, o::SGDOptions(1.0));
    if (kind == "rmsprop") return std::make_unique<o::RMSprop>(p, o::RMSpropOptions(1.0));
    if (kind == "adagrad") return std::make_unique<o::Adagrad>(p, o::AdagradOptions(1.0));
  }
  if (name == "adam") return std::make_unique<o::Adam>(p, o::AdamOptions(1e-2));
  if (name == "adam-amsgrad") return std::make_unique<o::Adam>(p, o::AdamOptions(1e-2).amsgrad(true).weight_decay(1e-3));
  if (name == "adamw") return std::make_unique<o::AdamW>(p, o::AdamWOptions(1e-2));
  if (name == "adamw-amsgrad") return std::make_unique<o::AdamW>(p, o::AdamWOptions(1e-2).amsgrad(true).weight_decay(0.05));
  if (name == "sgd") return std::make_unique<o::SGD>(p, o::SGDOptions(0.1));
  if (name == "sgd-momentum") return std::make_unique<o::SGD>(p, o::SGDOptions(0.1).momentum(0.9).dampening(0.1).weight_decay(1e-3));
  if (name == "sgd-nesterov") return std::make_unique<o::SGD>(p, o::SGDOptions(0.1).momentum(0.9).nesterov(true));
  if (name == "rmsprop") return std::make_unique<o::RMSprop>(p, o::RMSpropOptions(1e-2));
  if (name == "rmsprop-centered") return std::make_unique<o::RMSprop>(p, o::RMSpropOptions(1e-2).momentum(0.5).centered(true).weight_decay(1e-3));
  if (name == "adagrad") return std::make_unique<o::Adagrad>(p, o::AdagradOptions(0.1).lr_decay(0.01).initial_accumulator_value(0.1));
  throw std::invalid_argument("unknown optimizer " + name);
}

struct Data {
  torch::Tensor x, y;
};
CKPT_FIELDS(Data, x, y)

void train(Net& net, torch::optim::Optimizer& opt, const Data& d, std::int64_t from, std::int64_t steps) {
  net->train();
  for (std::int64_t i = from; i < from + steps; ++i) {
    const auto lo = (i % 6) * 8;
    opt.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(d.x.narrow(0, lo, 8)), d.y.narrow(0, lo, 8)).backward();
    opt.step();
  }
}

Data load_data(const std::string& path) {
  Data d;
  ckpt::load_into(path, d);
  return d;
}

int run(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "data" && argc == 3) {
    torch::manual_seed(7);
    Data d{torch::randn({48, 1, 6, 6}), torch::randint(0, 3, {48}, torch::kLong)};
    ckpt::save(argv[2], d);
  } else if (cmd == "train" && argc == 6) {
    const Data d = load_data(argv[3]);
    torch::manual_seed(1);
    Net net;
    auto opt = make_optimizer(argv[2], net, false);
    std::int64_t epoch = std::stoll(argv[4]);
    train(net, *opt, d, 0, epoch);
    ckpt::Checkpoint ck{{"model_state_dict", *net}, {"optimizer_state_dict", *opt}, {"epoch", epoch}};
    ck.write(argv[5]);
  } else if (cmd == "resume" && argc == 7) {
    const Data d = load_data(argv[3]);
    torch::manual_seed(2);
    Net net;
    auto opt = make_optimizer(argv[2], net, true);
    std::int64_t epoch = -1;
    ckpt::Checkpoint ck{{"model_state_dict", *net}, {"optimizer_state_dict", *opt}, {"epoch", epoch}};
    ck.restore(argv[4]).assert_consumed();
    train(net, *opt, d, epoch, std::stoll(argv[5]));
    epoch += std::stoll(argv[5]);
    ck.write(argv[6]);
  } else if (cmd == "model" && argc == 4) {
    const ckpt::StateDict sd = ckpt::load(argv[2]);
    const ckpt::StateDict* node = sd.find_key("model_state_dict");
    Net net;
    const auto r = ckpt::load_state_dict(*net, node ? *node : sd);
    if (!r.ok()) throw ckpt::key_error("model state does not match (" + r.summary() + ")", argv[2]);
    ckpt::save(argv[3], *net);
  } else {
    std::cerr << "usage: torch_integration_tool data OUT | train OPT DATA K OUT | resume OPT DATA IN N OUT | model IN OUT\n";
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  torch::set_num_threads(1);  // the Python side too: the same kernels, partitioned the same way
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // ckpt::error, c10::Error
    std::cerr << "torch_integration_tool: " << e.what() << "\n";
    return 1;
  }
}
