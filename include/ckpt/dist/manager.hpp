// ckpt/dist/manager.hpp — numbered distributed checkpoints kept in one directory by the ranks of
// a communicator together: CheckpointManager's retention, index, commit protocol,
// verify-and-fall-back and lock, with the coordinator (rank 0) owning the index and every decision
// broadcast, so that all ranks always agree on which checkpoints exist and which one they restore.
//
//   ckpt::dist::CheckpointManager mgr(comm, "run", model, {.max_to_keep = 3});
//   std::int64_t start = mgr.restore_or_initialize().value_or(0);   // any number of ranks
//   for (auto epoch = start + 1; epoch <= epochs; ++epoch) { train(); mgr.save(epoch); }
//
// Every member but the accessors is collective: all ranks call it, in the same order.
// Layout: `<dir>/<prefix>-<step>/` (a distributed checkpoint, dist::save's layout),
// `<dir>/checkpoints.json` (the index, the same file CheckpointManager keeps, with format "dist"),
// `<dir>/checkpoints.lock` (held by the coordinator). Saves are synchronous: see
// docs/DISTRIBUTED.md for why the background save of the single-process manager is not offered yet.
#pragma once

#include <algorithm>   // sorting entries
#include <cerrno>      // EEXIST
#include <chrono>      // checkpoint times
#include <cstdint>     // steps
#include <exception>   // std::exception_ptr
#include <filesystem>  // paths
#include <functional>  // the options' callbacks
#include <map>         // metrics
#include <optional>    // options, the coordinator's lock
#include <string>      // messages
#include <utility>     // std::move
#include <vector>      // entries

#include "../manager.hpp"        // VerifyFailure, BestMode, check_manager_options, retention_of
#include "../manager_index.hpp"  // ManagerIndex, apply_retention, open_index, remove_temporaries, DirLock
#include "comm.hpp"              // Communicator, collective_step, Status
#include "load.hpp"              // load_state
#include "plan.hpp"              // pack, unpack
#include "save.hpp"              // save

namespace ckpt::dist {

/// Options of a distributed CheckpointManager: the single-process manager's (ckpt::ManagerOptions,
/// same names, same meaning, checked by the same code), less its async and backend choices —
/// every checkpoint is a distributed one — and with dist::SaveOptions for the saves.
struct ManagerOptions {
  /// Keep the newest N checkpoints; std::nullopt keeps all. Must be >= 1.
  std::optional<std::size_t> max_to_keep = 5;
  /// Also keep, for good, one checkpoint per N hours among those leaving the newest-N window.
  std::optional<double> keep_every_n_hours{};
  /// Also keep every checkpoint whose step is a multiple of N.
  std::optional<std::int64_t> keep_every_n_steps{};
  /// Also keep the best K by `best_metric` (passed to save) under `best_mode`.
  std::size_t best_k = 0;
  std::string best_metric{};
  BestMode best_mode = BestMode::min;
  /// should_save(step) is true when step >= last saved step + N (or nothing is saved yet).
  std::int64_t save_interval_steps = 1;
  /// fsync (off also skips the index's fsync), crc_block_bytes, check_replicated.
  SaveOptions save_options{};
  /// skip_mismatched for restores (strict: see partial_restore).
  LoadOptions load_options{};
  /// restore_or_initialize() reads every block a rank needs with its CRC-32 checked and the
  /// metadata parsed before touching the object, and falls back past checkpoints that fail on
  /// any rank. false: errors propagate.
  bool verify_on_restore = true;
  /// false: restore_or_initialize() throws key_error when the object has keys the checkpoint lacks.
  bool partial_restore = false;
  /// Checkpoint directories are `<prefix>-<step>`.
  std::string prefix = "ckpt";
  /// Called on every rank for each checkpoint that fails verification (with that rank's error:
  /// the failing rank's own, rank_error on the others); null: a warning on the coordinator.
  std::function<void(const VerifyFailure&)> on_verify_failure{};
  /// The time recorded for each checkpoint (the coordinator's is used); null: system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock{};
};

/// Keeps numbered distributed checkpoints of `object` (any Checkpointable whose state may hold
/// ShardedTensors) in a directory every rank sees under the same path. The number of ranks may
/// differ from one run to the next: restore_or_initialize() is a resharding load.
template <Communicator C, Checkpointable T>
class CheckpointManager {
 public:
  static constexpr std::string_view lock_name = ckpt::detail::DirLock::file_name;
  static constexpr std::string_view format_name = "dist";

  /// Open (creating it if needed) `dir` on every rank; `comm` and `object` must outlive the
  /// manager. The coordinator locks the directory (io_error on every rank when another manager
  /// holds it), cleans up after an interrupted save and reconciles the index with the disk.
  CheckpointManager(C& comm, std::filesystem::path dir, T& object, ManagerOptions options = {})
      : comm_(comm), dir_(std::move(dir)), obj_(object), opts_(std::move(options)) {
    Bytes ix;
    collective_step(comm_, dir_.string(), [&] {
      validate();
      if (!coordinator()) return;
      std::error_code ec;
      std::filesystem::create_directories(dir_, ec);
      if (ec) throw io_error("cannot create checkpoint directory", dir_.string(), ec.value());
      lock_.emplace(dir_ / lock_name);
      ckpt::detail::remove_temporaries(dir_, opts_.prefix);
      index_ = ckpt::detail::open_index(dir_, opts_.prefix, backend(), now(), opts_.save_options.fsync);
      ix = pack(index_.to_json());
    });
    receive_index(ix);
  }
  CheckpointManager(const CheckpointManager&) = delete;
  CheckpointManager& operator=(const CheckpointManager&) = delete;

  const std::filesystem::path& directory() const noexcept { return dir_; }
  /// Where the checkpoint of `step` lives.
  std::filesystem::path path_for(std::int64_t step) const { return dir_ / (opts_.prefix + "-" + std::to_string(step)); }
  /// The committed checkpoints, oldest first (the same on every rank).
  const std::vector<CheckpointInfo>& checkpoints() const noexcept { return index_.entries; }
  /// The newest healthy checkpoint's step, if any.
  std::optional<std::int64_t> latest_step() const {
    for (auto it = index_.entries.rbegin(); it != index_.entries.rend(); ++it)
      if (!it->corrupt) return it->step;
    return std::nullopt;
  }
  /// True when `step` is due: nothing saved yet, or step >= last step + save_interval_steps.
  bool should_save(std::int64_t step) const {
    const auto last = latest_step();
    return !last || step >= *last + opts_.save_interval_steps;
  }
  /// The report of the last restore (missing / unexpected / mismatched keys, on this rank).
  const std::optional<LoadReport>& last_restore() const noexcept { return last_restore_; }

  /// Save the object's state as `step`, collectively, with optional metrics (best_k ranks by
  /// them); returns the checkpoint's path once committed. Throws on every rank when any rank
  /// fails (the previous checkpoints are untouched) and io_error (EEXIST) when `step` already
  /// has a healthy checkpoint. Retention deletes what it drops only after the index is written.
  std::filesystem::path save(std::int64_t step, const std::map<std::string, double>& metrics = {}) {
    auto path = path_for(step);  // not const: returned by value (moved)
    collective_step(comm_, path.string(), [&] {
      if (step < 0) throw error("invalid step", path.string(), "", "a step >= 0", std::to_string(step));
      for (const auto& e : index_.entries)
        if (e.step == step && !e.corrupt) throw io_error("a checkpoint for step " + std::to_string(step) + " already exists", path.string(), EEXIST);
    });
    dist::save(comm_, path, obj_, opts_.save_options);

    // The coordinator records it, applies retention and writes the index; every rank then takes
    // the coordinator's index — also when writing it failed, so that all ranks keep agreeing on
    // what exists. Dropped checkpoints are deleted only after the index no longer names them.
    Bytes ix;
    std::vector<std::filesystem::path> doomed;
    std::exception_ptr failed;
    try {
      collective_step(comm_, path.string(), [&] {
        if (!coordinator()) return;
        std::vector<CheckpointInfo> next;
        for (const auto& e : index_.entries) {
          if (e.step != step) next.push_back(e);
          else if (e.path != path) doomed.push_back(e.path);  // a corrupt one of the same step elsewhere
        }
        next.push_back({step, path, now(), metrics, std::string(format_name), false, false, {}});
        std::sort(next.begin(), next.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
        ManagerIndex ni;
        ni.last_preserved = index_.last_preserved;
        const auto drop = apply_retention(next, policy(), ni.last_preserved, step);
        for (std::size_t i = 0, d = 0; i < next.size(); ++i) {
          if (d < drop.size() && drop[d] == i) {
            doomed.push_back(next[i].path);
            ++d;
          } else {
            ni.entries.push_back(next[i]);
          }
        }
        try {
          ni.write(dir_, opts_.save_options.fsync);
        } catch (...) {
          index_.entries = std::move(next);  // the new checkpoint exists; nothing is deleted
          doomed.clear();
          ix = pack(index_.to_json());
          throw;
        }
        index_ = std::move(ni);
        ix = pack(index_.to_json());
      });
    } catch (...) {
      failed = std::current_exception();
    }
    receive_index(ix);
    if (failed) std::rethrow_exception(failed);
    for (const auto& p : doomed) {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
      if (ec) warn("cannot delete old checkpoint '" + p.string() + "': " + ec.message());
    }
    return path;
  }

  /// Restore the newest checkpoint that loads on every rank into the object (a resharding load:
  /// each rank reads only what its state asks for); returns its step, or nullopt when there is
  /// none. A checkpoint failing on any rank (a bad CRC, damaged metadata, a missing file) is
  /// reported (on_verify_failure) and skipped on every rank, before the object changes; damage to
  /// the bytes marks it corrupt in the index. corrupt_error on every rank when none loads.
  std::optional<std::int64_t> restore_or_initialize() {
    std::vector<CheckpointInfo> candidates;
    for (auto it = index_.entries.rbegin(); it != index_.entries.rend(); ++it)
      if (!it->corrupt) candidates.push_back(*it);
    if (candidates.empty()) return std::nullopt;
    // What each rank asks for: its object's state now (a throwing state_dict() fails every rank,
    // and is not the checkpoints' fault).
    StateDict request;
    collective_step(comm_, dir_.string(), [&] { request = to_state_dict(obj_); });
    std::string failures;
    for (const auto& e : candidates) {
      StateDict got;
      try {  // every rank throws when any rank fails (collective_step), so all take the same branch
        got = load_state(comm_, e.path, request, opts_.load_options);
      } catch (const rank_error& x) {
        if (!opts_.verify_on_restore) throw;
        report_failure(e, x, false);
        failures += (failures.empty() ? "" : "; ") + e.path.filename().string() + ": " + x.what();
        continue;
      } catch (const std::exception& x) {
        if (!opts_.verify_on_restore) throw;
        report_failure(e, x, ckpt::detail::is_content_error(x));
        failures += (failures.empty() ? "" : "; ") + e.path.filename().string() + ": " + x.what();
        continue;
      }
      collective_step(comm_, e.path.string(), [&] {
        LoadOptions lo = opts_.load_options;
        lo.strict = false;
        LoadReport report = load_state_dict(obj_, got, lo);
        last_restore_ = report;
        if (!opts_.partial_restore && !report.missing.empty())
          throw key_error("checkpoint does not hold the whole object (" + report.summary() + ")", e.path.string());
      });
      return e.step;
    }
    throw corrupt_error("no checkpoint could be restored (" + std::to_string(candidates.size()) + " tried)", dir_.string(), "",
                        "a checkpoint that verifies", failures);
  }

 private:
  bool coordinator() const { return comm_.rank() == 0; }
  std::chrono::system_clock::time_point now() const { return opts_.clock ? opts_.clock() : std::chrono::system_clock::now(); }
  RetentionPolicy policy() const { return ckpt::detail::retention_of(opts_); }
  /// What open_index needs to know of the checkpoints: directories named `<prefix>-<step>`.
  static Backend backend() {
    Backend b;
    b.name = std::string(format_name);
    b.extension.clear();
    b.directory = true;
    return b;
  }
  void validate() const { ckpt::detail::check_manager_options(opts_, dir_.string()); }
  /// Every rank takes the coordinator's index (the coordinator already has it; an empty message:
  /// the coordinator failed before it had one, and every rank keeps its own).
  void receive_index(Bytes& ix) {
    comm_.broadcast(ix, 0);
    if (!coordinator() && !ix.empty()) index_ = ManagerIndex::from_json(unpack(ix), dir_, (dir_ / ManagerIndex::file_name).string());
  }
  /// One checkpoint failed to load on some rank: every rank learns whether any rank saw damage to
  /// the bytes (then the coordinator marks it corrupt in the index), and reports it.
  void report_failure(const CheckpointInfo& e, const std::exception& x, bool content) {
    const Status damaged = comm_.all_reduce_status(content ? Status{comm_.rank(), x.what()} : Status{});
    VerifyFailure f{e.step, e.path, x.what(), std::current_exception(), !damaged.ok()};
    if (f.marked_corrupt) {
      for (auto& y : index_.entries)
        if (y.step == e.step) y.corrupt = true;
      if (coordinator()) {
        try {
          index_.write(dir_, opts_.save_options.fsync);
        } catch (const std::exception& w) {
          warn("cannot record corrupt checkpoint in the index: " + std::string(w.what()));
        }
      }
    }
    if (opts_.on_verify_failure) opts_.on_verify_failure(f);
    else if (coordinator()) warn("checkpoint '" + e.path.string() + "' (step " + std::to_string(e.step) + ") failed verification and is skipped: " + f.reason);
  }

  C& comm_;
  std::filesystem::path dir_;
  T& obj_;
  ManagerOptions opts_;
  std::optional<ckpt::detail::DirLock> lock_;  // the coordinator's
  ManagerIndex index_;
  std::optional<LoadReport> last_restore_;
};

}  // namespace ckpt::dist
