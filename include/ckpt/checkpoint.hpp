// ckpt/checkpoint.hpp — `ckpt::Checkpoint`, the object graph of a training run (as
// tf.train.Checkpoint): named Checkpointables tracked by reference, nested, saved as one tree
// {"save_counter": N, "<name>": <object's state>, ...}; `save(prefix)` numbers files with the
// save counter, which is itself saved and restored; `restore()` returns a `RestoreStatus` with
// TensorFlow's assertions (assert_consumed / assert_existing_objects_matched /
// assert_nontrivial_match / expect_partial). Also `ckpt::warn`, where library warnings go.
#pragma once

#include <cstdint>           // save counter
#include <exception>         // warnings never throw out of destructors
#include <filesystem>        // paths
#include <functional>        // type-erased tracked objects, warning handler
#include <initializer_list>  // Checkpoint{{"model", model}, ...}
#include <iostream>          // default warning sink
#include <memory>            // restore state shared by status and checkpoint
#include <string>            // names, messages
#include <string_view>       // names
#include <utility>           // std::move
#include <vector>            // tracked objects

#include "concepts.hpp"    // Checkpointable, to_state_dict / load_state_dict
#include "error.hpp"       // key_error, mismatch_error
#include "save_load.hpp"   // ckpt::save / ckpt::load
#include "state_dict.hpp"  // StateDict, LoadReport

namespace ckpt {

/// Where library warnings go (a checkpoint that failed verification, values a restore left
/// unused, a background save error nobody collected). Null (the default) prints them to
/// std::cerr. Set it once, before the library is used: it may be called from a
/// CheckpointManager's background thread.
inline std::function<void(const std::string&)>& warning_handler() {
  static std::function<void(const std::string&)> handler;
  return handler;
}
/// Emit a warning through warning_handler(); never throws.
inline void warn(const std::string& message) noexcept {
  try {
    if (auto& h = warning_handler()) h(message);
    else std::cerr << "ckpt: warning: " << message << '\n';
  } catch (...) {  // a warning must not turn into a failure
  }
}

namespace detail {
/// What one restore matched, shared by the RestoreStatus handles and the Checkpoint (which
/// keeps applying `pending` values to objects tracked after the restore, as TF does).
struct RestoreState {
  std::string path;                   // the file restored from ("" for a StateDict)
  LoadReport report;                  // missing / unexpected / mismatched inside tracked objects
  StateDict pending;                  // top-level nodes no tracked object has used (yet)
  std::vector<std::string> restored;  // tracked names that found their node
  bool partial = false;               // expect_partial() was called

  std::vector<std::string> unused() const {
    std::vector<std::string> u = report.unexpected;
    for (const auto& it : pending.items()) {
      const auto leaves = it.value.flatten();
      if (leaves.empty() || !it.value.is_dict()) u.push_back(KeyPath{it.key}.str());
      if (it.value.is_dict())
        for (const auto& [p, leaf] : leaves) u.push_back((KeyPath{it.key} / p).str());
    }
    return u;
  }
  std::vector<std::string> unmatched() const {
    std::vector<std::string> m = report.missing;
    m.insert(m.end(), report.mismatched.begin(), report.mismatched.end());
    return m;
  }
  RestoreState() = default;
  RestoreState(const RestoreState&) = delete;
  RestoreState& operator=(const RestoreState&) = delete;
  ~RestoreState() {
    if (partial) return;
    try {
      const auto u = unused();
      if (u.empty()) return;
      std::string list;
      for (std::size_t i = 0; i < u.size() && i < 20; ++i) list += (i ? ", " : "") + u[i];
      if (u.size() > 20) list += ", ... (" + std::to_string(u.size()) + " in all)";
      warn("a checkpoint was restored from '" + path + "' but not all of its values were used: " + list +
           ". Call expect_partial() on the RestoreStatus to silence this.");
    } catch (...) {
    }
  }
};

inline std::string join_list(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}
}  // namespace detail

/// The result of Checkpoint::restore, with tf.train.Checkpoint's semantics:
///  - "values"  are the leaves stored in the file; "objects" are what the Checkpoint tracks
///    (including its save_counter when the file has one; a file without one, as torch.save
///    writes them, leaves the counter as it is and is not unmatched) and the leaves inside them.
///  - assert_consumed(): every value in the file was used AND every tracked object found its
///    values (no missing, no mismatched, no unused). The strictest check.
///  - assert_existing_objects_matched(): every object tracked *now* found its values; values
///    in the file that nothing uses are allowed (they may belong to objects tracked later).
///  - assert_nontrivial_match(): at least one tracked object other than save_counter matched.
///  - expect_partial(): silence the warning emitted when the last handle to this restore goes
///    away while file values are still unused. It does not change what the asserts check.
/// Objects tracked after the restore are restored at track() time from values still pending,
/// and count for these checks (TF's deferred restoration). Failing asserts throw key_error
/// naming the file and listing every offending key path. Handles are cheap to copy and share
/// one state.
class RestoreStatus {
 public:
  explicit RestoreStatus(std::shared_ptr<detail::RestoreState> s) : s_(std::move(s)) {}

  /// Throws key_error unless every file value was used and every tracked object restored.
  RestoreStatus assert_consumed() const {
    const auto u = s_->unused(), m = s_->unmatched();
    if (!u.empty() || !m.empty()) {
      std::string what = "checkpoint not fully consumed";
      if (!u.empty()) what += "; values in the file that no tracked object used: " + detail::join_list(u);
      if (!m.empty()) what += "; tracked values the file did not provide: " + detail::join_list(m);
      throw key_error(what, s_->path);
    }
    return *this;
  }
  /// Throws key_error unless every currently tracked object found its values in the file.
  RestoreStatus assert_existing_objects_matched() const {
    const auto m = s_->unmatched();
    if (!m.empty()) throw key_error("tracked objects not matched by the checkpoint: " + detail::join_list(m), s_->path);
    return *this;
  }
  /// Throws key_error when no tracked object (besides save_counter) matched anything.
  RestoreStatus assert_nontrivial_match() const {
    for (const auto& n : s_->restored)
      if (n != "save_counter") return *this;
    throw key_error("no tracked object matched the checkpoint (only trivial matches)", s_->path);
  }
  /// Silence the unused-values warning for this restore.
  RestoreStatus expect_partial() const {
    s_->partial = true;
    return *this;
  }

  /// True when assert_consumed() would pass.
  bool consumed() const { return s_->unused().empty() && s_->unmatched().empty(); }
  /// True when assert_existing_objects_matched() would pass.
  bool existing_objects_matched() const { return s_->unmatched().empty(); }
  /// Key paths of file values no tracked object used (whole subtrees listed leaf by leaf).
  std::vector<std::string> unused() const { return s_->unused(); }
  /// Key paths of tracked values the file lacked or that were skipped as mismatched.
  std::vector<std::string> unmatched() const { return s_->unmatched(); }
  /// The underlying load report: missing, unexpected (including unused top-level values) and
  /// mismatched key paths, all relative to the checkpoint's root.
  LoadReport report() const {
    LoadReport r = s_->report;
    r.unexpected = s_->unused();
    return r;
  }
  /// Names of the tracked objects that found a node in the file.
  const std::vector<std::string>& restored_objects() const { return s_->restored; }
  /// The file restored from.
  const std::string& path() const { return s_->path; }

 private:
  std::shared_ptr<detail::RestoreState> s_;
};

class CheckpointManager;

namespace detail {
/// One save's claim on a save counter: counts it now, takes it back on destruction unless
/// keep() was called (the save committed, or was handed to a background writer that takes it
/// back itself when it fails), so a failed save never consumes a number on any path.
class SaveCount {
 public:
  explicit SaveCount(std::int64_t& counter) noexcept : counter_(counter) { ++counter_; }
  SaveCount(const SaveCount&) = delete;
  SaveCount& operator=(const SaveCount&) = delete;
  ~SaveCount() {
    if (!kept_) --counter_;
  }
  void keep() noexcept { kept_ = true; }

 private:
  std::int64_t& counter_;
  bool kept_ = false;
};
}  // namespace detail

/// A set of named Checkpointables tracked by reference (the objects must outlive the
/// Checkpoint), saved and restored as one tree. Nest by tracking another Checkpoint (or any
/// Checkpointable aggregate). Not copyable or movable: managers and restore handles refer to it.
///
///   Checkpoint ck{{"model", model}, {"optimizer", adam}};
///   ck.track("rng", rng);
///   auto path = ck.save("run/ckpt");          // run/ckpt-1.ckpt, save_counter = 1
///   ck.restore(path).assert_consumed();
class Checkpoint {
 public:
  /// A name and a type-erased reference to a Checkpointable object.
  struct Ref {
    template <Checkpointable T>
    Ref(std::string name_, T& obj)  // NOLINT: implicit, so {"name", obj} works in a braced list
        : name(std::move(name_)),
          save([&obj] { return ckpt::to_state_dict(obj); }),
          load([&obj](const StateDict& sd, const LoadOptions& o) { return ckpt::load_state_dict(obj, sd, o); }) {}
    std::string name;
    std::function<StateDict()> save;
    std::function<LoadReport(const StateDict&, const LoadOptions&)> load;
  };

  /// The key the save counter is stored under; no tracked object may use it.
  static constexpr std::string_view counter_key = "save_counter";

  Checkpoint() = default;
  /// Track each {name, object} pair, in order.
  Checkpoint(std::initializer_list<Ref> objects) {
    for (const auto& r : objects) add(r);
  }
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  /// Track `obj` under `name` (held by reference). key_error for an empty, duplicate or
  /// reserved name. After a restore, `obj` is restored at once from the file's pending values.
  template <Checkpointable T>
  Checkpoint& track(std::string name, T& obj) {
    add(Ref(std::move(name), obj));
    return *this;
  }
  /// Whether a tracked object has this name.
  bool tracks(std::string_view name) const { return find(name) != nullptr; }
  /// Tracked names, in tracking order.
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (const auto& r : objects_) v.push_back(r.name);
    return v;
  }

  /// Number of save() calls (restored by restore(); counts the manager's saves too).
  std::int64_t save_counter() const noexcept { return save_counter_; }

  /// Increment the save counter and write `<prefix>-<counter><ext>` (ext from opts.format,
  /// native ".ckpt" by default); returns the path. A failed save does not consume a number.
  std::filesystem::path save(const std::filesystem::path& prefix, const SaveOptions& opts = {}) {
    detail::SaveCount count(save_counter_);
    std::string ext;
    visit_format(opts.format.empty() ? std::string(archive_traits<native_format>::name) : opts.format, [&]<class F>(F) {
      if constexpr (archive_traits<F>::extensions.size() > 0) ext = std::string(archive_traits<F>::extensions[0]);
    });
    std::filesystem::path p = prefix;
    p += "-" + std::to_string(save_counter_) + ext;
    p = write(p, opts);
    count.keep();
    return p;
  }
  /// Write the checkpoint to exactly `path` (atomically, format as ckpt::save picks it),
  /// without numbering or touching the counter; returns the path.
  std::filesystem::path write(const std::filesystem::path& path, const SaveOptions& opts = {}) const {
    ckpt::save(path, state_dict(), opts);
    return path;
  }

  /// Restore from a file of any built-in format. The whole file is read (and checksums are
  /// verified) before any tracked object changes, so a corrupt file leaves them untouched.
  /// Missing and unused values never throw here: inspect or assert them on the status.
  /// A dtype/shape mismatch throws mismatch_error (objects restored before it keep their new
  /// values) unless opts.skip_mismatched, which reports it instead. opts.strict is ignored.
  RestoreStatus restore(const std::filesystem::path& path, const LoadOptions& opts = {}) {
    return restore(ckpt::load(path, opts), path.string(), opts);
  }
  /// Restore from a StateDict already in memory (e.g. ckpt::load_as<F>(path) of a custom
  /// backend); `source` names it in messages.
  RestoreStatus restore(const StateDict& sd, std::string source, const LoadOptions& opts = {}) {
    if (!sd.is_dict())
      throw mismatch_error("cannot restore a Checkpoint from a non-dict root", "", "dict", std::string(StateDict::kind_name(sd.kind())), source);
    auto st = std::make_shared<detail::RestoreState>();
    st->path = std::move(source);
    LoadOptions lo = opts;
    lo.strict = false;
    restore_counter(sd, *st);
    for (const auto& r : objects_) {
      if (const StateDict* node = sd.find_key(r.name)) apply(r, *node, lo, *st);
      else st->report.missing.push_back(KeyPath{r.name}.str());
    }
    for (const auto& it : sd.items())
      if (it.key != counter_key && !find(it.key)) st->pending.set(it.key, it.value);
    restore_state_ = st;
    opts_ = lo;
    return RestoreStatus(std::move(st));
  }

  /// The tree this checkpoint saves: {"save_counter": N, "<name>": state, ...}.
  StateDict state_dict() const {
    StateDict sd;
    sd.set(std::string(counter_key), StateDict(Value(save_counter_)));
    for (const auto& r : objects_) sd.set(r.name, r.save());
    return sd;
  }
  /// Load a tree into the tracked objects (used when this Checkpoint is nested in another);
  /// missing and unexpected paths are reported, not thrown.
  LoadReport load_state_dict(const StateDict& sd, const LoadOptions& opts) {
    expect_dict(sd, "a Checkpoint");
    detail::RestoreState st;
    st.partial = true;
    restore_counter(sd, st);
    for (const auto& r : objects_) {
      if (const StateDict* node = sd.find_key(r.name)) apply(r, *node, opts, st);
      else st.report.missing.push_back(KeyPath{r.name}.str());
    }
    for (const auto& it : sd.items())
      if (it.key != counter_key && !find(it.key)) st.pending.set(it.key, it.value);
    LoadReport r = st.report;
    r.unexpected = st.unused();
    return r;
  }

 private:
  friend class CheckpointManager;

  const Ref* find(std::string_view name) const {
    for (const auto& r : objects_)
      if (r.name == name) return &r;
    return nullptr;
  }
  void add(Ref r) {
    if (r.name.empty()) throw key_error("a tracked object needs a non-empty name");
    if (r.name == counter_key) throw key_error("the name 'save_counter' is reserved for the Checkpoint's counter", "", r.name);
    if (find(r.name)) throw key_error("an object is already tracked under this name", "", r.name);
    objects_.push_back(std::move(r));
    // Deferred restoration: an object tracked after a restore gets its values now.
    if (auto st = restore_state_) {
      const Ref& added = objects_.back();
      if (const StateDict* node = st->pending.find_key(added.name)) {
        const StateDict value = *node;
        st->pending.erase(added.name);
        apply(added, value, opts_, *st);
      } else {
        st->report.missing.push_back(KeyPath{added.name}.str());
      }
    }
  }
  // A file without a save_counter (anything torch.save or ckpt::save wrote, not a Checkpoint)
  // leaves the counter as it is and does not count as unmatched: the counter numbers this
  // Checkpoint's own saves and is not an object of the user's, so restoring a PyTorch file whose
  // model and optimizer match passes assert_existing_objects_matched() and assert_consumed().
  void restore_counter(const StateDict& sd, detail::RestoreState& st) {
    const StateDict* c = sd.find_key(counter_key);
    if (!c) return;
    std::int64_t n = 0;
    try {
      ckpt::load_state_dict(n, *c, LoadOptions{});
    } catch (const mismatch_error& e) {
      throw mismatch_error(e.reason(), std::string(counter_key), e.expected(), e.got(), st.path);
    }
    save_counter_ = n;
    st.restored.emplace_back(counter_key);
  }
  void apply(const Ref& r, const StateDict& node, const LoadOptions& lo, detail::RestoreState& st) {
    const KeyPath prefix{r.name};
    try {
      st.report.merge(r.load(node, lo), prefix);
    } catch (const mismatch_error& e) {
      if (!lo.skip_mismatched) {
        const std::string p = prefix.str();
        throw mismatch_error(e.reason(), e.key().empty() ? p : p + "." + e.key(), e.expected(), e.got(), e.path().empty() ? st.path : e.path());
      }
      st.report.mismatched.push_back((e.key().empty() ? prefix.str() : prefix.str() + "." + e.key()) + " (expected " + e.expected() + ", got " + e.got() + ")");
    }
    st.restored.push_back(r.name);
  }

  std::vector<Ref> objects_;
  std::int64_t save_counter_ = 0;
  std::shared_ptr<detail::RestoreState> restore_state_;  // the last restore, for deferred objects
  LoadOptions opts_;                                      // its options
};

}  // namespace ckpt
