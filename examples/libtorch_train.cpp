// libtorch_train — the libtorch training-loop example: a small convnet (Conv2d, BatchNorm2d,
// Linear) trained by torch::optim::Adam on synthetic images, checkpointed at every epoch
// boundary through a CheckpointManager (async: a save copies the tensors and returns) and
// resumed exactly. The model and optimizer are stored as Python's state_dict()s, so
//   d = torch.load("DIR/epoch-3.pt")
//   model.load_state_dict(d["model_state_dict"]); opt.load_state_dict(d["optimizer_state_dict"])
// continues the run in Python (--format pt).
//
//   libtorch_train --ckpt-dir DIR [--epochs N] [--stop-after K] [--seed S] [--format F]
//
// --stop-after K exits right after saving epoch K, as an interruption would; a later run with
// the same DIR resumes from the newest checkpoint. The last line is a digest of the model and
// optimizer state, so an interrupted-and-resumed run can be compared with an uninterrupted one.
#include <ckpt/ckpt.hpp>
#include <ckpt/integrations/torch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace fs = std::filesystem;

struct ConvNetImpl : torch::nn::Module {
  ConvNetImpl()
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3).padding(1)))),
        bn(register_module("bn", torch::nn::BatchNorm2d(8))),
        fc(register_module("fc", torch::nn::Linear(8 * 4 * 4, 4))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(bn(conv(x))), 2);
    return fc(x.flatten(1));
  }
  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
  torch::nn::Linear fc;
};
TORCH_MODULE(ConvNet);

namespace {
struct Args {
  fs::path dir;
  int epochs = 6;
  std::optional<int> stop_after;
  std::uint64_t seed = 42;
  std::string format = "pt";
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "libtorch_train: " << why << "\n"
            << "usage: libtorch_train --ckpt-dir DIR [--epochs N] [--stop-after K] [--seed S] [--format F]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  const std::map<std::string, std::function<void(const std::string&)>> flags{
      {"--ckpt-dir", [&](const std::string& v) { a.dir = v; }},
      {"--epochs", [&](const std::string& v) { a.epochs = std::stoi(v); }},
      {"--stop-after", [&](const std::string& v) { a.stop_after = std::stoi(v); }},
      {"--seed", [&](const std::string& v) { a.seed = std::stoull(v); }},
      {"--format", [&](const std::string& v) { a.format = v; }}};
  for (int i = 1; i < argc; i += 2) {
    const auto f = flags.find(argv[i]);
    if (f == flags.end()) usage(std::string("unknown argument ") + argv[i]);
    if (i + 1 >= argc) usage(std::string("missing value after ") + argv[i]);
    try {
      f->second(argv[i + 1]);
    } catch (const std::logic_error&) {
      usage(std::string("bad number for ") + argv[i]);
    }
  }
  if (a.dir.empty()) usage("--ckpt-dir is required");
  return a;
}

/// 512 noisy 8x8 images; the label is the quadrant holding a bright 3x3 blob.
std::pair<torch::Tensor, torch::Tensor> synthetic_data(std::uint64_t seed) {
  torch::manual_seed(seed);
  const std::int64_t n = 512;
  auto x = 0.3 * torch::randn({n, 1, 8, 8});
  auto y = torch::randint(0, 4, {n}, torch::kLong);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto q = y[i].item<std::int64_t>();
    const auto r = (q / 2) * 4 + 1, c = (q % 2) * 4 + 1;
    x[i][0].narrow(0, r, 3).narrow(1, c, 3).add_(1.0);
  }
  return {x, y};
}

/// 64-bit FNV-1a over every tensor byte of the given states.
std::uint64_t digest(std::initializer_list<ckpt::StateDict> states) {
  std::uint64_t h = 1469598103934665603ull;
  for (const auto& sd : states)
    for (const auto& [path, leaf] : sd.flatten())
      if (leaf->is_tensor())
        for (const std::byte b : leaf->tensor().bytes()) h = (h ^ static_cast<std::uint64_t>(b)) * 1099511628211ull;
  return h;
}
}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    torch::set_num_threads(1);  // the same kernels' partition on every run: a resumed run is bit-identical
    const auto [x, y] = synthetic_data(args.seed);
    torch::manual_seed(args.seed + 1);
    ConvNet model;
    torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-2).amsgrad(true));
    std::int64_t epoch = 0;
    std::mt19937_64 rng(args.seed);  // shuffles the samples every epoch; saved with the rest

    // All a libtorch program writes to checkpoint (the manager numbers and keeps them).
    ckpt::Checkpoint ck{{"model_state_dict", *model}, {"optimizer_state_dict", optimizer}, {"epoch", epoch}, {"rng", rng}};
    ckpt::ManagerOptions mo;
    mo.format = args.format;
    mo.prefix = "epoch";
    mo.max_to_keep = 3;
    mo.async = true;
    ckpt::CheckpointManager manager(args.dir, ck, mo);
    if (const auto step = manager.restore_or_initialize())
      std::cout << "resumed from " << manager.last_restore()->path() << " at epoch " << epoch << "\n";

    const std::int64_t batch = 32, n = x.size(0);
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    while (epoch < args.epochs) {
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      const auto index = torch::tensor(order, torch::kLong);
      model->train();
      double total = 0;
      for (std::int64_t lo = 0; lo < n; lo += batch) {
        const auto idx = index.narrow(0, lo, std::min(batch, n - lo));
        optimizer.zero_grad();
        auto loss = torch::nn::functional::cross_entropy(model->forward(x.index_select(0, idx)), y.index_select(0, idx));
        loss.backward();
        optimizer.step();
        total += loss.item<double>();
      }
      ++epoch;
      const fs::path path = manager.save(epoch);
      std::printf("epoch %d loss %.6f saved %s\n", static_cast<int>(epoch), total / static_cast<double>((n + batch - 1) / batch), path.c_str());
      if (args.stop_after && epoch == *args.stop_after) {
        manager.wait_until_finished();
        std::printf("stopping after epoch %d\n", *args.stop_after);
        return 0;
      }
    }
    manager.wait_until_finished();
    torch::NoGradGuard no_grad;
    model->eval();
    const auto accuracy = (model->forward(x).argmax(1) == y).to(torch::kDouble).mean().item<double>();
    std::printf("training accuracy %.3f\n", accuracy);
    std::printf("state-digest %016llx\n",
                static_cast<unsigned long long>(digest({ckpt::to_state_dict(*model), ckpt::to_state_dict(optimizer)})));
  } catch (const std::exception& e) {  // ckpt::error, and c10::Error from libtorch
    std::cerr << e.what() << "\n";
    return 1;
  }
}
