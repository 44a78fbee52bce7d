// train_dist — the distributed training example, run under mpirun: a linear model y = W x + b
// whose weight W [64, 32] is row-sharded over the ranks (tensor parallel), with a replicated bias
// and Adam moments sharded as their parameters are (ZeRO-1 style for the bias's: each rank keeps
// the moments of its rows only), trained on synthetic data and saved at every epoch boundary
// through ckpt::dist::CheckpointManager.
//
//   mpirun -n R train_dist --ckpt-dir DIR [--epochs N] [--stop-after K] [--seed S]
//
// The arithmetic does not depend on the number of ranks: every output row is computed by one
// rank over the same samples in the same order, the bias is reassembled from the rows, and the
// loss is summed row by row in a fixed order after an allgather. So a run stopped after epoch 2
// on 4 ranks, resumed on 2 and stopped after epoch 4, then resumed on 3, ends in the same state
// as 4 ranks uninterrupted — each resume is a resharding load of the newest checkpoint. The last
// line is a digest of the *global* state (gathered on rank 0), printed by rank 0 with the other
// lines: `resumed from P at epoch E`, `epoch E loss X saved P`, `stopping after epoch K`.
#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <ckpt/dist.hpp>
#include <ckpt/dist/mpi.hpp>

namespace fs = std::filesystem;
using ckpt::dist::Box;
using ckpt::dist::ShardedTensor;

namespace {
constexpr std::int64_t kOut = 64, kIn = 32, kSamples = 1024, kBatch = 64;

struct Args {
  fs::path dir;
  int epochs = 6;
  std::optional<int> stop_after;
  std::uint64_t seed = 42;
};

[[noreturn]] void usage(const std::string& why, int rank) {
  if (rank == 0)
    std::cerr << "train_dist: " << why << "\n"
              << "usage: mpirun -n R train_dist --ckpt-dir DIR [--epochs N] [--stop-after K] [--seed S]\n";
  MPI_Finalize();
  std::exit(2);
}

Args parse(int argc, char** argv, int rank) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value after " + k, rank);
      return argv[++i];
    };
    try {
      if (k == "--ckpt-dir") a.dir = next();
      else if (k == "--epochs") a.epochs = std::stoi(next());
      else if (k == "--stop-after") a.stop_after = std::stoi(next());
      else if (k == "--seed") a.seed = std::stoull(next());
      else usage("unknown argument " + k, rank);
    } catch (const std::logic_error&) {
      usage("bad number for " + k, rank);
    }
  }
  if (a.dir.empty()) usage("--ckpt-dir is required", rank);
  return a;
}

/// Synthetic data, the same on every rank: x [kSamples, kIn], y = x A^T + c + noise [kSamples, kOut].
struct Data {
  std::vector<float> x, y;
  explicit Data(std::uint64_t seed) : x(kSamples * kIn), y(kSamples * kOut) {
    std::mt19937_64 g(seed ^ 0xd15c);
    std::normal_distribution<float> normal;
    std::vector<float> a(kOut * kIn), c(kOut);
    for (auto& v : a) v = normal(g);
    for (auto& v : c) v = normal(g);
    for (auto& v : x) v = normal(g);
    for (std::int64_t i = 0; i < kSamples; ++i)
      for (std::int64_t o = 0; o < kOut; ++o) {
        float s = c[o];
        for (std::int64_t k = 0; k < kIn; ++k) s += x[i * kIn + k] * a[o * kIn + k];
        y[i * kOut + o] = s + 0.1f * normal(g);
      }
  }
};

/// What one rank holds: its rows of W and of W's moments, the whole bias, the moments of its
/// rows' bias entries. Checkpointable through CKPT_FIELDS; ShardedTensors make it a sharded state.
struct Model {
  ShardedTensor weight;  // [kOut, kIn], rows split over the ranks
  ckpt::Tensor bias;     // [kOut], replicated
};
CKPT_FIELDS(Model, weight, bias)

struct Adam {
  std::int64_t step = 0;
  ShardedTensor exp_avg_weight, exp_avg_sq_weight;  // as weight
  ShardedTensor exp_avg_bias, exp_avg_sq_bias;      // [kOut], the same rows as weight
};
CKPT_FIELDS(Adam, step, exp_avg_weight, exp_avg_sq_weight, exp_avg_bias, exp_avg_sq_bias)

struct TrainState {
  Model model;
  Adam optimizer;
  int epoch = 0;
  double loss = 0;
};
CKPT_FIELDS(TrainState, model, optimizer, epoch, loss)

std::span<float> rows(ShardedTensor& t) { return t.chunks()[0].data.mutable_values<float>(); }

class Trainer {
 public:
  Trainer(ckpt::dist::MpiComm& comm, std::uint64_t seed) : comm_(comm) {
    const Box mine = ckpt::dist::split_box({kOut, kIn}, 0, comm.rank(), comm.size());
    first_ = mine.offsets[0];
    count_ = mine.shape[0];
    const Box bias_rows{{first_}, {count_}};
    auto zeros = [](ckpt::Shape g, const Box& b) { return ShardedTensor::zeros(ckpt::DType::f32, std::move(g), {b}); };
    s.model.weight = zeros({kOut, kIn}, mine);
    s.model.bias = ckpt::Tensor(ckpt::DType::f32, {kOut});
    s.optimizer.exp_avg_weight = zeros({kOut, kIn}, mine);
    s.optimizer.exp_avg_sq_weight = zeros({kOut, kIn}, mine);
    s.optimizer.exp_avg_bias = zeros({kOut}, bias_rows);
    s.optimizer.exp_avg_sq_bias = zeros({kOut}, bias_rows);
    // torch.nn.Linear's init, drawn for the global tensors so that every world size starts equal.
    std::mt19937_64 g(seed);
    std::uniform_real_distribution<float> u(-1.0f / std::sqrt(float(kIn)), 1.0f / std::sqrt(float(kIn)));
    std::vector<float> w(kOut * kIn);
    for (auto& v : w) v = u(g);
    for (auto& v : s.model.bias.mutable_values<float>()) v = u(g);
    std::memcpy(rows(s.model.weight).data(), w.data() + first_ * kIn, static_cast<std::size_t>(count_ * kIn) * sizeof(float));
  }

  /// One epoch of minibatches in a fixed order; the mean squared error over the epoch.
  void train_epoch(const Data& d) {
    double epoch_loss = 0;
    for (std::int64_t b0 = 0; b0 < kSamples; b0 += kBatch) epoch_loss += step(d, b0);
    s.loss = epoch_loss / double(kSamples / kBatch);
    ++s.epoch;
  }

  TrainState s;

  /// FNV-1a over the global state, gathered on rank 0 (other ranks get 0).
  std::uint64_t digest() {
    std::vector<std::byte> mine;
    auto add = [&](std::span<const float> v) {
      const auto* p = reinterpret_cast<const std::byte*>(v.data());
      mine.insert(mine.end(), p, p + v.size_bytes());
    };
    add(rows(s.model.weight));
    add(rows(s.optimizer.exp_avg_weight));
    add(rows(s.optimizer.exp_avg_sq_weight));
    add(rows(s.optimizer.exp_avg_bias));
    add(rows(s.optimizer.exp_avg_sq_bias));
    const auto parts = comm_.gather(mine, 0);
    if (comm_.rank() != 0) return 0;
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](const void* p, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
    };
    // Each part is [W rows | m rows | v rows | m_b rows | v_b rows]; lay each array out globally.
    std::vector<std::int64_t> counts;
    for (int r = 0; r < comm_.size(); ++r) counts.push_back(ckpt::dist::split_box({kOut, kIn}, 0, r, comm_.size()).shape[0]);
    const std::int64_t widths[] = {kIn, kIn, kIn, 1, 1};
    std::vector<std::size_t> at(parts.size(), 0);
    for (const auto width : widths)
      for (std::size_t r = 0; r < parts.size(); ++r) {
        const auto n = static_cast<std::size_t>(counts[r] * width) * sizeof(float);
        mix(parts[r].data() + at[r], n);
        at[r] += n;
      }
    const auto bias = s.model.bias.values<float>();
    mix(bias.data(), bias.size_bytes());
    mix(&s.optimizer.step, sizeof s.optimizer.step);
    mix(&s.epoch, sizeof s.epoch);
    mix(&s.loss, sizeof s.loss);
    return h;
  }

 private:
  /// One minibatch: gradients of this rank's rows, Adam on them, the bias reassembled from
  /// every rank's rows. Returns the batch's mean squared error (the same on every rank).
  double step(const Data& d, std::int64_t b0) {
    auto w = rows(s.model.weight);
    auto bias = s.model.bias.mutable_values<float>();
    std::vector<float> gw(static_cast<std::size_t>(count_ * kIn), 0.0f), gb(static_cast<std::size_t>(count_), 0.0f);
    std::vector<double> row_loss(static_cast<std::size_t>(count_), 0.0);
    for (std::int64_t r = 0; r < count_; ++r) {
      const std::int64_t o = first_ + r;
      for (std::int64_t i = b0; i < b0 + kBatch; ++i) {
        float pred = bias[o];
        for (std::int64_t k = 0; k < kIn; ++k) pred += w[r * kIn + k] * d.x[i * kIn + k];
        const float err = pred - d.y[i * kOut + o];
        row_loss[r] += double(err) * double(err);
        const float g = 2.0f * err / float(kBatch * kOut);
        for (std::int64_t k = 0; k < kIn; ++k) gw[r * kIn + k] += g * d.x[i * kIn + k];
        gb[r] += g;
      }
    }
    ++s.optimizer.step;
    adam(w, gw, rows(s.optimizer.exp_avg_weight), rows(s.optimizer.exp_avg_sq_weight));
    std::vector<float> my_bias(bias.begin() + first_, bias.begin() + first_ + count_);
    adam(my_bias, gb, rows(s.optimizer.exp_avg_bias), rows(s.optimizer.exp_avg_sq_bias));

    // Every rank's rows of the bias and of the loss, in rank order = row order.
    std::vector<std::byte> mine(my_bias.size() * sizeof(float) + row_loss.size() * sizeof(double));
    std::memcpy(mine.data(), my_bias.data(), my_bias.size() * sizeof(float));
    std::memcpy(mine.data() + my_bias.size() * sizeof(float), row_loss.data(), row_loss.size() * sizeof(double));
    const auto all = comm_.allgather(mine);
    std::int64_t o = 0;
    double loss = 0;
    for (const auto& part : all) {
      const auto n = static_cast<std::int64_t>(part.size() / (sizeof(float) + sizeof(double)));
      std::memcpy(bias.data() + o, part.data(), static_cast<std::size_t>(n) * sizeof(float));
      for (std::int64_t r = 0; r < n; ++r) {  // a fixed order: row by row
        double l;
        std::memcpy(&l, part.data() + static_cast<std::size_t>(n) * sizeof(float) + static_cast<std::size_t>(r) * sizeof(double), sizeof l);
        loss += l;
      }
      o += n;
    }
    return loss / double(kBatch * kOut);
  }

  /// torch.optim.Adam's update (lr 1e-2, betas 0.9/0.999, eps 1e-8), element by element.
  void adam(std::span<float> p, const std::vector<float>& g, std::span<float> m, std::span<float> v) const {
    constexpr float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const double t = double(s.optimizer.step);
    const float c1 = float(1.0 - std::pow(double(b1), t)), c2 = float(std::sqrt(1.0 - std::pow(double(b2), t)));
    for (std::size_t i = 0; i < p.size(); ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] -= lr * (m[i] / c1) / (std::sqrt(v[i]) / c2 + eps);
    }
  }

  ckpt::dist::MpiComm& comm_;
  std::int64_t first_ = 0, count_ = 0;
};
}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const Args args = parse(argc, argv, rank);
  int status = 0;
  try {
    ckpt::dist::MpiComm comm;
    const Data data(args.seed);
    Trainer trainer(comm, args.seed);
    ckpt::dist::ManagerOptions mo;
    mo.prefix = "epoch";
    mo.max_to_keep = 3;
    ckpt::dist::CheckpointManager manager(comm, args.dir, trainer.s, mo);

    // Resume from the newest checkpoint that loads on every rank, whatever the number of ranks
    // that saved it; nothing there: start from scratch.
    if (const auto epoch = manager.restore_or_initialize(); epoch && rank == 0)
      std::printf("resumed from %s at epoch %d on %d ranks\n", manager.path_for(*epoch).c_str(), trainer.s.epoch, comm.size());

    while (trainer.s.epoch < args.epochs) {
      trainer.train_epoch(data);
      const fs::path path = manager.save(trainer.s.epoch, {{"loss", trainer.s.loss}});
      if (rank == 0) std::printf("epoch %d loss %.9g saved %s\n", trainer.s.epoch, trainer.s.loss, path.c_str());
      if (args.stop_after && trainer.s.epoch == *args.stop_after) {
        if (rank == 0) std::printf("stopping after epoch %d\n", *args.stop_after);
        std::fflush(stdout);
        MPI_Finalize();
        return 0;
      }
    }
    const std::uint64_t d = trainer.digest();
    if (rank == 0) std::printf("state-digest %016llx\n", static_cast<unsigned long long>(d));
  } catch (const ckpt::error& e) {
    std::cerr << "rank " << rank << ": " << e.what() << "\n";
    status = 1;
  }
  std::fflush(stdout);
  MPI_Finalize();
  return status;
}
