// train_linear — the training-loop example: a linear model trained by Adam on synthetic data,
// saving its whole training state at every epoch boundary and resuming exactly.
//
//   train_linear --ckpt-dir DIR [--epochs N] [--stop-after K] [--seed S] [--format F]
//                [--export PATH]
//
// If DIR holds a checkpoint, the run resumes from the newest one that loads. --stop-after K
// exits right after saving epoch K, as an interruption would. The last line is a digest of
// the model, optimizer and RNG state, so an interrupted-and-resumed run can be compared with
// an uninterrupted one. --export writes an inference bundle (weights + model config) that
// predict_linear loads without any training code.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
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
  std::uint64_t seed = 42;
  std::string format = "native";
  std::optional<fs::path> export_path;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "train_linear: " << why << "\n"
            << "usage: train_linear --ckpt-dir DIR [--epochs N] [--stop-after K] [--seed S] [--format F] [--export PATH]\n";
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
      else if (k == "--seed") a.seed = std::stoull(next());
      else if (k == "--format") a.format = next();
      else if (k == "--export") a.export_path = next();
      else usage("unknown argument " + k);
    } catch (const std::logic_error&) {
      usage("bad number for " + k);
    }
  }
  if (a.dir.empty()) usage("--ckpt-dir is required");
  return a;
}

/// Checkpoints are DIR/epoch-NNNN<ext>; the newest is the highest epoch number.
std::vector<std::pair<int, fs::path>> checkpoints(const fs::path& dir) {
  std::vector<std::pair<int, fs::path>> v;
  if (!fs::exists(dir)) return v;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("epoch-", 0) != 0 || n.find(ckpt::io::temp_marker) != std::string::npos) continue;
    try {
      v.emplace_back(std::stoi(n.substr(6, 4)), e.path());
    } catch (const std::logic_error&) {
    }
  }
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  try {
    const std::string ext(ckpt::visit_format(args.format, []<class F>(F) { return std::string(ckpt::archive_traits<F>::extensions[0]); }));
    fs::create_directories(args.dir);
    const Dataset data = Dataset::synthetic(args.seed);
    auto trainer_ptr = std::make_unique<Trainer>(data, args.seed);

    // Resume from the newest checkpoint that loads; say so when one is skipped. Each attempt
    // loads into a fresh trainer so a failed load leaves no half-restored state behind.
    auto found = checkpoints(args.dir);
    for (auto it = found.rbegin(); it != found.rend(); ++it) {
      auto attempt = std::make_unique<Trainer>(data, args.seed);
      try {
        ckpt::load_into(it->second, *attempt);
      } catch (const ckpt::error& e) {
        std::cerr << "warning: skipping " << it->second.string() << ": " << e.what() << "\n";
        continue;
      }
      trainer_ptr = std::move(attempt);
      std::cout << "resumed from " << it->second.string() << " at epoch " << trainer_ptr->epoch << "\n";
      break;
    }
    Trainer& trainer = *trainer_ptr;

    ckpt::SaveOptions so;
    so.format = args.format;
    while (trainer.epoch < args.epochs) {
      const double loss = trainer.train_epoch(data);
      char name[32];
      std::snprintf(name, sizeof name, "epoch-%04d", static_cast<int>(trainer.epoch));
      const fs::path path = args.dir / (name + ext);
      ckpt::save(path, trainer, so);
      std::printf("epoch %d loss %.9g saved %s\n", static_cast<int>(trainer.epoch), loss, path.c_str());
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
