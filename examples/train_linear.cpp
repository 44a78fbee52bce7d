// train_linear — the training-loop example: a linear model trained by Adam on synthetic data,
// saving its whole training state at every epoch boundary and resuming exactly, also from
// inside an epoch.
//
//   train_linear --ckpt-dir DIR [--epochs N] [--stop-after K] [--stop-after-batch B] [--seed S]
//                [--format F] [--layout ckpt|torch] [--export PATH]
//
// Checkpoints go through a CheckpointManager, numbered by optimizer step — the minibatches
// trained since the start, 64 an epoch: DIR/step-<N><ext>, the newest 3 kept plus the best by
// loss. If DIR holds one, the run resumes from the newest that verifies and loads. --layout
// torch names the top-level entries as PyTorch's checkpoint recipe does (model_state_dict,
// optimizer_state_dict, epoch, loss). --stop-after K exits right after saving epoch K, as an
// interruption would; --stop-after-batch B saves at step B, inside an epoch as a rule, and
// exits. The last line is a digest of the whole training state, so an interrupted-and-resumed
// run can be compared with an uninterrupted one. --export writes an inference bundle (weights +
// model config) that predict_linear loads without any training code.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "linear_adam.hpp"

namespace fs = std::filesystem;
using namespace linear_adam;

namespace {
struct Args {
  fs::path dir;
  int epochs = 10;
  std::optional<int> stop_after;
  std::int64_t stop_after_batch = std::numeric_limits<std::int64_t>::max();
  std::uint64_t seed = 42;
  std::string format = "native";
  bool torch_layout = false;
  std::optional<fs::path> export_path;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "train_linear: " << why << "\n"
            << "usage: train_linear --ckpt-dir DIR [--epochs N] [--stop-after K] [--stop-after-batch B] [--seed S] [--format F]"
               " [--layout ckpt|torch] [--export PATH]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + k);
      return argv[++i];
    };
    try {
      if (k == "--ckpt-dir") a.dir = next();
      else if (k == "--epochs") a.epochs = std::stoi(next());
      else if (k == "--stop-after") a.stop_after = std::stoi(next());
      else if (k == "--stop-after-batch") a.stop_after_batch = std::stoll(next());
      else if (k == "--seed") a.seed = std::stoull(next());
      else if (k == "--format") a.format = next();
      else if (k == "--export") a.export_path = next();
      else if (k == "--layout") {
        const std::string l = next();
        if (l != "ckpt" && l != "torch") usage("--layout is ckpt or torch");
        a.torch_layout = l == "torch";
      }
      else usage("unknown argument " + k);
    } catch (const std::logic_error&) {
      usage("bad number for " + k);
    }
  }
  if (a.dir.empty()) usage("--ckpt-dir is required");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    const Dataset data = Dataset::synthetic(args.seed);
    Trainer trainer(data, args.seed);

    // The training state, by name: the manager saves and restores these together.
    ckpt::Checkpoint ck;
    ck.track(args.torch_layout ? "model_state_dict" : "model", trainer.model)
        .track(args.torch_layout ? "optimizer_state_dict" : "optimizer", trainer.optimizer)
        .track("epoch", trainer.epoch)
        .track("loss", trainer.loss)
        .track("rng", trainer.rng)
        .track("order", trainer.order)
        .track("next_batch", trainer.next_batch)
        .track("running_loss", trainer.running_loss);
    ckpt::ManagerOptions mo;
    mo.format = args.format;
    mo.prefix = "step";  // numbered by optimizer step: a save inside an epoch has its own number
    mo.max_to_keep = 3;
    mo.best_k = 1;
    mo.best_metric = "loss";
    ckpt::CheckpointManager manager(args.dir, ck, mo);

    // Resume from the newest checkpoint that verifies and loads (the manager says which it
    // skipped and why); nothing there: start from scratch.
    if (const auto step = manager.restore_or_initialize()) {
      std::cout << "resumed from " << manager.last_restore()->path() << " at step " << trainer.global_step(data) << " (epoch "
                << trainer.epoch << ", batch " << trainer.next_batch << ")\n";
      if (trainer.global_step(data) != *step)
        throw ckpt::mismatch_error("checkpoint number and training step differ", "next_batch", std::to_string(*step), std::to_string(trainer.global_step(data)));
    }

    while (trainer.epoch < args.epochs) {
      if (trainer.global_step(data) >= args.stop_after_batch) {
        std::printf("stopping after step %lld\n", static_cast<long long>(args.stop_after_batch));
        return 0;
      }
      const bool epoch_done = trainer.train_until(data, args.stop_after_batch);
      const std::int64_t step = trainer.global_step(data);
      if (!epoch_done) {  // inside an epoch: no loss to rank it by yet
        const fs::path path = manager.save(step);
        std::printf("step %lld (epoch %d, batch %d) saved %s\n", static_cast<long long>(step), static_cast<int>(trainer.epoch),
                    static_cast<int>(trainer.next_batch), path.c_str());
        continue;  // the check above stops the run here
      }
      const fs::path path = manager.save(step, {{"loss", trainer.loss}});
      std::printf("epoch %d loss %.9g saved %s\n", static_cast<int>(trainer.epoch), trainer.loss, path.c_str());
      if (args.stop_after && trainer.epoch == *args.stop_after) {
        std::printf("stopping after epoch %d\n", *args.stop_after);
        std::fflush(stdout);
        return 0;
      }
    }

    if (args.export_path) {
      ckpt::StateDict bundle;
      bundle.set("weight", trainer.model.state_dict().at("weight"));
      bundle.set("bias", trainer.model.state_dict().at("bias"));
      bundle["config"] = ckpt::Value{{"in_features", trainer.model.in_features()}, {"out_features", trainer.model.out_features()}, {"dtype", "f32"}};
      ckpt::save(*args.export_path, bundle);
      std::printf("exported %s\n", args.export_path->c_str());
      for (std::int64_t r = 0; r < 3; ++r) {
        const auto x = probe_input(r, trainer.model.in_features());
        std::vector<float> y(static_cast<std::size_t>(trainer.model.out_features()));
        trainer.model.forward(x.data(), y.data());
        std::printf("prediction %d: %.9g\n", static_cast<int>(r), y[0]);
      }
    }
    std::printf("state-digest %016llx\n", static_cast<unsigned long long>(trainer.digest()));
  } catch (const ckpt::error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
