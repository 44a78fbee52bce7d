// ckpt/manager.hpp — `ckpt::CheckpointManager`, the directory of numbered checkpoints a
// training run keeps (as tf.train.CheckpointManager / Orbax's CheckpointManager): one file (or
// directory) per step written atomically with any backend, an index committed before any old
// checkpoint is deleted, retention (newest N, every N steps, every N hours, best K by a
// metric), crash cleanup and reconciliation on open, verified restore that falls back past
// corrupt checkpoints, asynchronous saves from a bounded staging copy, and an advisory lock
// so that two managers never write one directory.
#pragma once

#include <algorithm>           // searching entries
#include <chrono>              // clock
#include <cmath>               // std::isfinite for options
#include <condition_variable>  // staging budget, worker queue
#include <cstring>             // staging copies
#include <cstdint>             // steps, byte counts
#include <deque>               // pending saves
#include <exception>           // background errors
#include <filesystem>          // directory
#include <functional>          // callbacks
#include <map>                 // metrics
#include <mutex>               // index and queue state
#include <new>                 // std::bad_alloc is never a fallback case
#include <optional>            // options, results
#include <set>                 // steps being saved
#include <string>              // names, messages
#include <thread>              // background writer
#include <utility>             // std::exchange, std::move
#include <vector>              // entries

#include "checkpoint.hpp"     // Checkpoint, RestoreStatus, warn
#include "detail/lane.hpp"    // two-thread staging copies
#include "error.hpp"          // io_error, corrupt_error
#include "manager_index.hpp"  // Backend, retention, index file, lock, open-time cleanup

namespace ckpt {

/// A checkpoint that failed verification during restore_or_initialize().
struct VerifyFailure {
  std::int64_t step = 0;
  std::filesystem::path path;
  std::string reason;          ///< the exception's message
  std::exception_ptr error;    ///< the exception itself
  bool marked_corrupt = false; ///< the bytes are bad (not a transient I/O error): skipped from now on
};

/// What the async staging has done. Staging memory holds the copies of tensors save() makes;
/// buffers of written saves are kept and reused by the next save of the same sizes (a fresh
/// allocation costs a page fault per 4 KiB, several times the copy itself).
struct StagingStats {
  std::uint64_t staged_bytes = 0;       ///< staging memory held now: in flight + kept for reuse
  std::uint64_t in_flight_bytes = 0;    ///< staged by saves not yet written
  std::uint64_t peak_staged_bytes = 0;  ///< most staging memory held at once (<= max_staging_bytes)
  std::uint64_t reused_bytes = 0;       ///< bytes staged into reused buffers, in total
  std::size_t async_saves = 0;          ///< saves handed to the background writer
  std::size_t sync_saves = 0;           ///< saves written on the caller's thread
  std::size_t blocked_saves = 0;        ///< saves that waited for earlier writes to drain
  std::size_t waiting = 0;              ///< saves waiting right now
};

/// CheckpointManager options. Keepers are a union: a checkpoint survives if any rule keeps it.
struct ManagerOptions {
  /// Keep the newest N checkpoints; std::nullopt keeps all (an explicit choice). Must be >= 1.
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
  /// The backend: a built-in name ("native", "json") or Backend::of<Tag>() for any backend.
  Backend format{};
  /// Codec, compression level, fsync (fsync off also skips the index's fsync). `.format` is
  /// ignored: `format` above decides.
  SaveOptions save_options{};
  /// mmap / skip_mismatched for restores (strict is ignored: see RestoreStatus).
  LoadOptions load_options{};
  /// save() stages a copy of the state and returns; a background thread writes it.
  bool async = false;
  /// Async memory budget. Set: staging memory (in flight + kept for reuse) never exceeds it — a
  /// save that would pass it waits for earlier writes to drain, and a state larger than the
  /// whole budget is written synchronously from the live objects. Unset: one staged save at a
  /// time, any size, and the buffers of the last one kept for the next.
  std::optional<std::uint64_t> max_staging_bytes{};
  /// restore_or_initialize() checks every file of a checkpoint against the size and CRC-32 the
  /// index recorded when it was committed (or, where none were recorded, the format's own
  /// checksums) and its structure, before touching any object, and falls back past checkpoints
  /// that fail; restore(step) checks the same. false: load as load_options say; errors propagate.
  bool verify_on_restore = true;
  /// false: restore_or_initialize() requires every tracked object to find its values
  /// (RestoreStatus::assert_existing_objects_matched) and throws key_error otherwise.
  bool partial_restore = false;
  /// Checkpoint names are `<prefix>-<step><extension>`.
  std::string prefix = "ckpt";
  /// Called for each checkpoint that fails verification; null: a warning via ckpt::warn.
  std::function<void(const VerifyFailure&)> on_verify_failure{};
  /// The time recorded for each checkpoint (tests inject one); null: system_clock::now.
  std::function<std::chrono::system_clock::time_point()> clock{};
};


namespace detail {
/// error naming the option when `o`'s retention, interval or naming options are invalid (what
/// both managers check when they open: ckpt::ManagerOptions and dist::ManagerOptions share these
/// members).
template <class Options>
void check_manager_options(const Options& o, const std::string& dir) {
  auto bad = [&](const std::string& opt, const std::string& expected, const std::string& got) {
    return error("invalid CheckpointManager option '" + opt + "'", dir, "", expected, got);
  };
  if (o.max_to_keep && *o.max_to_keep == 0) throw bad("max_to_keep", "at least 1 (std::nullopt keeps all)", "0");
  if (o.keep_every_n_steps && *o.keep_every_n_steps <= 0) throw bad("keep_every_n_steps", "a positive step count", std::to_string(*o.keep_every_n_steps));
  if (o.keep_every_n_hours && !(*o.keep_every_n_hours > 0 && std::isfinite(*o.keep_every_n_hours))) throw bad("keep_every_n_hours", "a positive number of hours", std::to_string(*o.keep_every_n_hours));
  if (o.best_k > 0 && o.best_metric.empty()) throw bad("best_metric", "a metric name (best_k is set)", "\"\"");
  if (o.save_interval_steps < 1) throw bad("save_interval_steps", "at least 1", std::to_string(o.save_interval_steps));
  if (o.prefix.empty() || o.prefix.find('/') != std::string::npos) throw bad("prefix", "a non-empty file-name prefix", "\"" + o.prefix + "\"");
}
/// The retention knobs of `o` (either manager's options).
template <class Options>
RetentionPolicy retention_of(const Options& o) {
  return {o.max_to_keep, o.keep_every_n_steps, o.keep_every_n_hours, o.best_k, o.best_metric, o.best_mode};
}
}  // namespace detail

/// Keeps numbered checkpoints of a Checkpoint in a directory.
///
///   ckpt::Checkpoint ck{{"model", model}, {"optimizer", adam}};
///   ckpt::CheckpointManager mgr("run", ck, {.max_to_keep = 3, .best_k = 1, .best_metric = "loss"});
///   std::int64_t start = mgr.restore_or_initialize().value_or(0);
///   for (auto step = start + 1; step <= steps; ++step) {
///     train_one_step();
///     if (mgr.should_save(step)) mgr.save(step, {{"loss", loss}});
///   }
///   mgr.wait_until_finished();
///
/// Commit protocol of one save: the checkpoint is written under `<name>.tmp-<random>`,
/// fsynced, renamed into place and the directory fsynced (io::AtomicFile / AtomicDir); then
/// the index `checkpoints.json` is replaced atomically, recording it with the size and CRC-32
/// of each of its files (taken as they were written, io::DigestRecorder); only then are the
/// checkpoints retention dropped deleted. On open, temporaries of a crashed save are removed,
/// index entries whose file is gone are dropped and checkpoints on disk the index lacks are
/// adopted (without metrics). The methods are meant for one thread (the training loop).
class CheckpointManager {
 public:
  static constexpr std::string_view lock_name = detail::DirLock::file_name;

  /// Open (creating it if needed) `dir` for `checkpoint`, which must outlive the manager.
  /// Throws io_error when another manager holds the directory.
  CheckpointManager(std::filesystem::path dir, Checkpoint& checkpoint, ManagerOptions options = {})
      : dir_(std::move(dir)), ck_(checkpoint), opts_(std::move(options)) {
    validate();
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw io_error("cannot create checkpoint directory", dir_.string(), ec.value());
    lock_.emplace(dir_ / lock_name);
    detail::remove_temporaries(dir_, opts_.prefix);
    index_ = detail::open_index(dir_, opts_.prefix, opts_.format, now(), opts_.save_options.fsync);
    if (opts_.async) worker_ = std::thread([this] { worker_loop(); });
  }
  CheckpointManager(const CheckpointManager&) = delete;
  CheckpointManager& operator=(const CheckpointManager&) = delete;
  /// Finishes pending saves; an error nobody collected is reported through ckpt::warn.
  ~CheckpointManager() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    if (error_) {
      try {
        std::rethrow_exception(error_);
      } catch (const std::exception& e) {
        warn(std::string("a background checkpoint save failed and was never collected: ") + e.what());
      } catch (...) {
        warn("a background checkpoint save failed and was never collected");
      }
    }
  }

  const std::filesystem::path& directory() const noexcept { return dir_; }
  /// Where the checkpoint of `step` lives.
  std::filesystem::path path_for(std::int64_t step) const {
    return dir_ / (opts_.prefix + "-" + std::to_string(step) + opts_.format.extension);
  }

  /// True when `step` is due: nothing saved yet, or step >= last step + save_interval_steps.
  bool should_save(std::int64_t step) const {
    std::lock_guard lk(mu_);
    const auto last = newest_step_locked(true);
    return !last || step >= *last + opts_.save_interval_steps;
  }

  /// Save the checkpoint as `step` with optional metrics (best_k ranks by them); returns the
  /// path it has (or, async, will have) once committed. Throws io_error (EEXIST) when `step`
  /// already has a healthy checkpoint; rethrows an earlier background failure. Async: returns
  /// once the state is staged (see max_staging_bytes) — the objects may change right away.
  std::filesystem::path save(std::int64_t step, const std::map<std::string, double>& metrics = {}) {
    rethrow_background_error();
    auto path = path_for(step);  // not const: returned by value (moved)
    if (step < 0) throw error("invalid step", path.string(), "", "a step >= 0", std::to_string(step));
    {
      std::lock_guard lk(mu_);
      if (pending_steps_.count(step)) throw io_error("a checkpoint for step " + std::to_string(step) + " is already being saved", path.string(), EEXIST);
      for (const auto& e : index_.entries)
        if (e.step == step && !e.corrupt) throw io_error("a checkpoint for step " + std::to_string(step) + " already exists", path.string(), EEXIST);
    }
    detail::SaveCount count(ck_.save_counter_);  // taken back unless the save commits or is queued
    Job job{step, metrics, ck_.state_dict(), 0};
    if (!opts_.async) {
      write_sync(job);
      count.keep();
      return path;
    }
    const auto plan = staging_plan(job.state);
    std::uint64_t need = 0;
    for (const auto& [p, n] : plan) need += n;
    std::unique_lock lk(mu_);
    if (opts_.max_staging_bytes && need > *opts_.max_staging_bytes) {
      // Cannot be staged within the budget: let earlier saves finish, then write from the live
      // objects on this thread (no copy at all).
      wait_locked(lk, [&] { return inflight_ == 0; });
      lk.unlock();
      rethrow_background_error();
      write_sync(job);
      count.keep();
      return path;
    }
    wait_locked(lk, [&] { return opts_.max_staging_bytes ? in_flight_bytes_ + need <= *opts_.max_staging_bytes : inflight_ == 0; });
    std::vector<std::optional<Tensor>> reuse(plan.size());
    std::vector<Tensor> evicted;
    reserve_locked(plan, need, reuse, evicted);
    ++inflight_;
    pending_steps_.insert(step);
    lk.unlock();
    evicted.clear();  // free spare buffers outside the lock
    try {
      stage(job, plan, reuse);
    } catch (...) {
      lk.lock();
      in_flight_bytes_ -= need;
      --inflight_;
      pending_steps_.erase(step);
      done_cv_.notify_all();
      throw;
    }
    job.staged_bytes = need;
    lk.lock();
    jobs_.push_back(std::move(job));
    ++stats_.async_saves;
    lk.unlock();
    count.keep();  // from here a failure is the worker's: rethrow_background_error() takes it back
    work_cv_.notify_one();
    return path;
  }

  /// Block until every pending async save is committed; rethrow the first background error.
  void wait_until_finished() {
    {
      std::unique_lock lk(mu_);
      done_cv_.wait(lk, [&] { return inflight_ == 0; });
    }
    rethrow_background_error();
  }

  /// Path of the newest committed healthy checkpoint (highest step).
  std::optional<std::filesystem::path> latest() const {
    std::lock_guard lk(mu_);
    for (auto it = index_.entries.rbegin(); it != index_.entries.rend(); ++it)
      if (!it->corrupt) return it->path;
    return std::nullopt;
  }
  /// Step of latest().
  std::optional<std::int64_t> latest_step() const {
    std::lock_guard lk(mu_);
    return newest_step_locked(false);
  }
  /// Every committed checkpoint the index lists, by step.
  std::vector<CheckpointInfo> checkpoints() const {
    std::lock_guard lk(mu_);
    return index_.entries;
  }

  /// Restore the newest checkpoint that loads and verifies; returns its step, or nullopt when
  /// the directory has none (initialize from scratch). Each one that fails is reported
  /// (on_verify_failure or a warning, with file and reason); one whose bytes are bad is marked
  /// corrupt in the index. corrupt_error when checkpoints exist but none can be restored.
  std::optional<std::int64_t> restore_or_initialize() {
    wait_until_finished();
    std::vector<CheckpointInfo> candidates;
    {
      std::lock_guard lk(mu_);
      for (auto it = index_.entries.rbegin(); it != index_.entries.rend(); ++it)
        if (!it->corrupt) candidates.push_back(*it);
    }
    if (candidates.empty()) return std::nullopt;
    std::string failures;
    for (const auto& e : candidates) {
      StateDict sd;
      try {
        sd = load_checked(e);
      } catch (const std::bad_alloc&) {
        throw;
      } catch (const std::exception& x) {
        if (!opts_.verify_on_restore) throw;
        report_failure(e, x);
        failures += (failures.empty() ? "" : "; ") + e.path.filename().string() + ": " + x.what();
        continue;
      }
      RestoreStatus st = ck_.restore(sd, e.path.string(), opts_.load_options);
      last_restore_ = st;
      if (!opts_.partial_restore) st.assert_existing_objects_matched();
      return e.step;
    }
    throw corrupt_error("no checkpoint could be restored (" + std::to_string(candidates.size()) + " tried)", dir_.string(), "",
                        "a checkpoint that verifies", failures);
  }
  /// Restore the checkpoint of `step` (no fallback; errors propagate). key_error when the
  /// index has no such step.
  RestoreStatus restore(std::int64_t step) {
    wait_until_finished();
    std::optional<CheckpointInfo> e;
    {
      std::lock_guard lk(mu_);
      for (const auto& x : index_.entries)
        if (x.step == step) e = x;
    }
    if (!e) throw key_error("no checkpoint for step " + std::to_string(step), dir_.string());
    RestoreStatus st = ck_.restore(load_checked(*e), e->path.string(), opts_.load_options);
    last_restore_ = st;
    return st;
  }
  /// The status of the last restore through this manager.
  const std::optional<RestoreStatus>& last_restore() const noexcept { return last_restore_; }

  /// Staging counters (for budgets and tests).
  StagingStats staging_stats() const {
    std::lock_guard lk(mu_);
    StagingStats s = stats_;
    s.in_flight_bytes = in_flight_bytes_;
    s.staged_bytes = in_flight_bytes_ + pooled_bytes_;
    return s;
  }

 private:
  struct Job {
    std::int64_t step;
    std::map<std::string, double> metrics;
    StateDict state;
    std::uint64_t staged_bytes;
    std::vector<Tensor> buffers = {};  // staging memory the state's tensors view
  };

  void validate() const {
    detail::check_manager_options(opts_, dir_.string());
    if (!opts_.format.save || !opts_.format.load)
      throw error("invalid CheckpointManager option 'format'", dir_.string(), "", "a Backend with save and load", "an empty Backend");
  }
  RetentionPolicy policy() const { return detail::retention_of(opts_); }
  std::chrono::system_clock::time_point now() const { return opts_.clock ? opts_.clock() : std::chrono::system_clock::now(); }
  StateDict load_checked(const CheckpointInfo& e) {
    return detail::load_for_restore(backend_for(e), e, opts_.load_options, opts_.verify_on_restore);
  }
  const Backend& backend_for(const CheckpointInfo& e) {
    if (e.format.empty() || e.format == opts_.format.name) return opts_.format;
    auto it = other_backends_.find(e.format);
    if (it == other_backends_.end()) it = other_backends_.emplace(e.format, Backend(e.format)).first;
    return it->second;
  }
  std::optional<std::int64_t> newest_step_locked(bool with_pending) const {
    std::optional<std::int64_t> s;
    for (const auto& e : index_.entries)
      if (!e.corrupt) s = std::max(s.value_or(e.step), e.step);
    if (with_pending)
      for (auto p : pending_steps_) s = std::max(s.value_or(p), p);
    return s;
  }
  template <class Pred>
  void wait_locked(std::unique_lock<std::mutex>& lk, Pred ready) {
    if (ready()) return;
    ++stats_.blocked_saves;
    ++stats_.waiting;
    done_cv_.wait(lk, ready);
    --stats_.waiting;
  }
  /// On the caller's thread (the only one that touches the Checkpoint's counter): takes back
  /// the count of every background save that failed, then rethrows the first failure.
  void rethrow_background_error() {
    std::exception_ptr e;
    std::int64_t failed = 0;
    {
      std::lock_guard lk(mu_);
      e = std::exchange(error_, nullptr);
      failed = std::exchange(failed_saves_, 0);
    }
    ck_.save_counter_ -= failed;
    if (e) std::rethrow_exception(e);
  }

  // ---- staging ----
  // Tensors that must be copied: everything writable (the caller may change it) and borrowed
  // memory. Read-only tensors viewing a shared mapping cannot change and are shared as is.
  static bool must_copy(const Tensor& t) { return t.writable() || !t.owner(); }
  using Plan = std::vector<std::pair<KeyPath, std::uint64_t>>;
  static Plan staging_plan(const StateDict& sd) {
    Plan plan;
    for (const auto& [p, leaf] : sd.flatten())
      if (leaf->is_tensor() && must_copy(leaf->tensor())) plan.emplace_back(p, leaf->tensor().nbytes());
    return plan;
  }
  /// Account `need` bytes in flight, taking spare buffers of matching sizes from the pool and
  /// evicting spare ones so that held memory stays within the budget (with no budget, only the
  /// previous save's spares are kept, so they are all evicted here).
  void reserve_locked(const Plan& plan, std::uint64_t need, std::vector<std::optional<Tensor>>& reuse, std::vector<Tensor>& evicted) {
    for (std::size_t i = 0; i < plan.size(); ++i) {
      auto it = pool_.find(plan[i].second);
      if (it == pool_.end()) continue;
      reuse[i].emplace(std::move(it->second));
      pool_.erase(it);
      pooled_bytes_ -= plan[i].second;
      stats_.reused_bytes += plan[i].second;
    }
    in_flight_bytes_ += need;
    while (!pool_.empty() && (!opts_.max_staging_bytes || in_flight_bytes_ + pooled_bytes_ > *opts_.max_staging_bytes)) {
      pooled_bytes_ -= pool_.begin()->first;
      evicted.push_back(std::move(pool_.begin()->second));
      pool_.erase(pool_.begin());
    }
    stats_.peak_staged_bytes = std::max(stats_.peak_staged_bytes, in_flight_bytes_ + pooled_bytes_);
  }
  /// Copy each planned tensor into its buffer and make the state view the copy. This is the
  /// part of an async save the training loop waits for: large tensors are copied by two threads
  /// (the copy is bound by one core's memory bandwidth, not the machine's).
  void stage(Job& job, const Plan& plan, std::vector<std::optional<Tensor>>& reuse) {
    std::lock_guard lk(stage_mu_);
    for (std::size_t i = 0; i < plan.size(); ++i) {
      const auto& [p, n] = plan[i];
      StateDict& node = p.empty() ? job.state : job.state.at(p);
      const Tensor& src = node.tensor();
      Tensor buf = reuse[i] ? std::move(*reuse[i]) : Tensor::empty(DType::u8, {static_cast<std::int64_t>(n)});
      std::byte* const dst = buf.mutable_data();
      const std::byte* const from = src.data();
      stage_lane_.split_fill(n, [&](int, std::uint64_t at, std::size_t k) {
        std::memcpy(dst + at, from + at, k);
        return std::span<const std::byte>(dst + at, k);
      });
      Tensor copy = Tensor::view_of({src.dtype(), src.shape(), buf.data(), static_cast<std::size_t>(n)}, buf.owner());
      node.tensor() = std::move(copy);
      job.buffers.push_back(std::move(buf));
    }
  }

  // ---- writing ----
  void write_sync(Job& job) {
    commit(job);
    std::lock_guard lk(mu_);
    ++stats_.sync_saves;
  }
  void worker_loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      work_cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      std::uint64_t bytes;
      std::int64_t step;
      std::vector<Tensor> buffers;
      {
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        bytes = job.staged_bytes;
        step = job.step;
        lk.unlock();
        try {
          commit(job);
        } catch (...) {
          std::lock_guard g(mu_);
          ++failed_saves_;
          if (!error_) error_ = std::current_exception();
          else warn("another background checkpoint save failed (step " + std::to_string(step) + ") while an earlier failure was pending");
        }
        buffers = std::move(job.buffers);
      }  // the state (views of the buffers) is gone here
      std::vector<Tensor> freed;
      lk.lock();
      in_flight_bytes_ -= bytes;
      for (auto& b : buffers) {  // keep for reuse what nothing else holds and the budget allows
        const bool fits = !opts_.max_staging_bytes || in_flight_bytes_ + pooled_bytes_ + b.nbytes() <= *opts_.max_staging_bytes;
        if (fits && b.owner().use_count() == 1) {
          pooled_bytes_ += b.nbytes();
          pool_.emplace(b.nbytes(), std::move(b));
        } else {
          freed.push_back(std::move(b));
        }
      }
      --inflight_;
      pending_steps_.erase(step);
      done_cv_.notify_all();
      lk.unlock();
      freed.clear();
      buffers.clear();
      lk.lock();
    }
  }
  /// Write one checkpoint, record it in the index, then delete what retention drops.
  void commit(const Job& job) {
    const auto path = path_for(job.step);
    {  // A hint, nothing more: the checkpoints retention will drop once this one is saved give
       // it their page cache (io::drop_cached_pages); they are deleted only after the commit.
      std::vector<CheckpointInfo> next;
      auto last_preserved = std::chrono::system_clock::time_point{};
      {
        std::lock_guard lk(mu_);
        next = entries_with({job.step, path, now(), job.metrics, opts_.format.name, false, false, {}}, nullptr);
        last_preserved = index_.last_preserved;
      }
      for (const auto i : apply_retention(next, policy(), last_preserved, job.step))
        if (next[i].path != path) io::drop_cached_tree(next[i].path);
    }
    io::DigestRecorder recorder(path);  // the size and CRC-32 of each file, taken as it is written
    opts_.format.save(path, job.state, opts_.save_options);
    auto files = detail::digest_checkpoint(path, recorder.written());
    std::vector<std::filesystem::path> doomed;
    {
      std::lock_guard lk(mu_);
      // (a checkpoint of the same step in another format, e.g. a corrupt one, is replaced)
      std::vector<CheckpointInfo> next = entries_with({job.step, path, now(), job.metrics, opts_.format.name, false, false, std::move(files)}, &doomed);
      ManagerIndex ni;
      ni.last_preserved = index_.last_preserved;
      auto all = next;
      const auto drop = apply_retention(next, policy(), ni.last_preserved, job.step);
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
        index_.entries = std::move(all);  // the new checkpoint exists; nothing was deleted
        throw;
      }
      index_ = std::move(ni);
    }
    for (const auto& p : doomed) {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
      if (ec) warn("cannot delete old checkpoint '" + p.string() + "': " + ec.message());
    }
  }

  /// The index's entries with `info` added, replacing any of the same step (their paths, when
  /// they differ from info's, go to `replaced`), sorted by step. The caller holds mu_.
  std::vector<CheckpointInfo> entries_with(CheckpointInfo info, std::vector<std::filesystem::path>* replaced) const {
    std::vector<CheckpointInfo> next;
    for (const auto& e : index_.entries) {
      if (e.step != info.step) next.push_back(e);
      else if (replaced && e.path != info.path) replaced->push_back(e.path);
    }
    next.push_back(std::move(info));
    std::sort(next.begin(), next.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
    return next;
  }

  // ---- restore helpers ----
  void report_failure(const CheckpointInfo& e, const std::exception& x) {
    VerifyFailure f{e.step, e.path, x.what(), std::current_exception(), detail::is_content_error(x)};
    if (f.marked_corrupt) {
      std::lock_guard lk(mu_);
      for (auto& y : index_.entries)
        if (y.step == e.step) y.corrupt = true;
      try {
        index_.write(dir_, opts_.save_options.fsync);
      } catch (const std::exception& w) {
        warn("cannot record corrupt checkpoint in the index: " + std::string(w.what()));
      }
    }
    if (opts_.on_verify_failure) opts_.on_verify_failure(f);
    else warn("checkpoint '" + e.path.string() + "' (step " + std::to_string(e.step) + ") failed verification and is skipped: " + f.reason);
  }

  std::filesystem::path dir_;
  Checkpoint& ck_;
  ManagerOptions opts_;
  std::optional<detail::DirLock> lock_;
  std::map<std::string, Backend> other_backends_;
  std::optional<RestoreStatus> last_restore_;
  std::mutex stage_mu_;      // one staging copy at a time uses the lane
  detail::Lane stage_lane_;  // copies half of each large tensor while the caller copies the other

  mutable std::mutex mu_;  // guards everything below
  ManagerIndex index_;
  std::deque<Job> jobs_;
  std::set<std::int64_t> pending_steps_;
  std::uint64_t in_flight_bytes_ = 0;            // staged by saves not yet written
  std::uint64_t pooled_bytes_ = 0;               // spare staging buffers kept for reuse
  std::multimap<std::uint64_t, Tensor> pool_;    // spare buffers by size
  std::size_t inflight_ = 0;                     // saves staged and not yet written
  StagingStats stats_;
  std::exception_ptr error_;
  std::int64_t failed_saves_ = 0;  // background saves failed since the last rethrow (under mu_)
  bool stop_ = false;
  std::condition_variable work_cv_, done_cv_;
  std::thread worker_;  // last: started after everything else exists
};

}  // namespace ckpt
