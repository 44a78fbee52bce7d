// tools/cli.hpp — shared pieces of the `ckpt` command-line tool: the parsed command line,
// exit codes, the progress bar, a type-erased view of any checkpoint a built-in backend reads
// (`Opened`, from `open_checkpoint`), a type-erased writer for `convert` (`Sink`), the walk
// over a checkpoint's tree, and small formatting helpers. Everything here is generic over
// ckpt::builtin_formats: a backend added there is picked up without changes to the tool.
#pragma once

#include <chrono>      // progress timing
#include <cstdint>     // sizes
#include <filesystem>  // paths
#include <functional>  // type-erased archives
#include <memory>      // archive holders
#include <optional>    // optional facts
#include <stdexcept>   // usage_error
#include <string>      // names, messages
#include <vector>      // entries, arguments

#include <nlohmann/json.hpp>  // --json output (ordered_json keeps field order)

#include <ckpt/concepts.hpp>    // EntryInfo
#include <ckpt/state_dict.hpp>  // KeyPath, Value, Container
#include <ckpt/tensor.hpp>      // Tensor
#include <ckpt/traits.hpp>      // ArchiveCaps, SaveOptions

namespace ckpt_cli {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

/// Exit codes: 0 ok / equal / good; 1 differs (diff) or bad (verify); 2 unreadable or
/// invalid input, usage error.
enum ExitCode : int { exit_ok = 0, exit_differs = 1, exit_bad_input = 2 };

/// A command-line mistake; main prints it as one line and exits 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The parsed command line. Options may appear anywhere after the command.
struct Args {
  std::string command;
  std::vector<std::string> operands;
  bool json = false;
  std::optional<double> rtol, atol;  // diff
  std::string format, codec;         // convert
  bool inert_objects = false;        // every command that reads a checkpoint

  /// The load options every command that reads a checkpoint starts from.
  ckpt::LoadOptions load_options() const {
    ckpt::LoadOptions o;
    o.inert_objects = inert_objects;
    return o;
  }
};

/// Writes the JSON document (--json) or lets the command print text.
void print_json(const Json& doc);

// ---- progress --------------------------------------------------------------------------

/// A one-line progress bar on stderr, drawn only when stderr is a terminal (isatty(2)) and
/// the work has run longer than CKPT_PROGRESS_DELAY seconds (default 1). Cleared when done.
class Progress {
 public:
  Progress(std::string label, std::uint64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  /// `n` more units (bytes) done.
  void advance(std::uint64_t n);

 private:
  void draw();
  std::string label_;
  std::uint64_t total_, done_ = 0;
  bool enabled_;
  bool drawn_ = false;
  double delay_;
  std::chrono::steady_clock::time_point start_, last_;
};

// ---- reading any checkpoint --------------------------------------------------------------

/// One leaf of a checkpoint's tree, in depth-first insertion order.
struct Leaf {
  ckpt::KeyPath path;
  bool is_tensor = false;
  std::size_t index = 0;             ///< entry index (tensor leaves)
  const ckpt::Value* value = nullptr;  ///< the value (value leaves); points into Opened::tree
};

/// A checkpoint opened with its own backend, type-erased.
struct Opened {
  std::string path;
  std::string format;  ///< backend name
  ckpt::ArchiveCaps caps;
  std::vector<ckpt::EntryInfo> entries;
  /// The tree (detail/skeleton.hpp form), validated. For a format that stores no tree, one
  /// built from the entries' key paths (and `flat` is true).
  ckpt::Value tree;
  bool flat = false;
  /// Each entry's key path in the tree (the entry's own path when the tree does not place it).
  std::vector<ckpt::KeyPath> tree_paths;
  std::optional<long long> format_version;  ///< when the backend exposes one
  std::optional<std::uint64_t> alignment;   ///< largest power of two (<= 4096) dividing every data offset
  std::uint64_t size_on_disk = 0;           ///< bytes of the file, or of every file in the directory
  std::function<ckpt::Tensor(std::size_t)> read_tensor;
  /// Check entry i's stored bytes (checksum where the format has one; else read it whole).
  std::function<void(std::size_t)> check_entry;

  /// Every leaf, depth first in insertion order.
  std::vector<Leaf> leaves() const;
  /// A key path for text output: escaped (str()) when the file has a tree; for a flat file,
  /// whose keys are single names, the name itself; "(root)" for the root.
  std::string display(const ckpt::KeyPath& p) const;
};

/// True when `dir` is a CheckpointManager directory (it holds the manager's index file).
bool is_manager_dir(const fs::path& dir);
/// True when `dir` is a distributed checkpoint (ckpt/dist.hpp: it holds metadata.json); the
/// tool opens it as format "dist", one checkpoint of global tensors.
bool is_dist_dir(const fs::path& dir);
/// Name of the backend that reads `path` (a file, or a directory some backend reads).
/// format_error / io_error when none does.
std::string detect_format(const fs::path& path);
/// Open `path` with backend `format` (reads the index, never the tensor data).
Opened open_as(const fs::path& path, const std::string& format, const ckpt::LoadOptions& opts);
/// detect_format + open_as. A manager directory is refused with a hint naming its latest
/// checkpoint (usage_error).
Opened open_checkpoint(const fs::path& path, const ckpt::LoadOptions& opts = {});

/// Name, extensions and capabilities of every built-in backend.
Json formats_json();
/// A backend's capabilities as a JSON object of booleans.
Json caps_json(const ckpt::ArchiveCaps& c);

// ---- writing with any backend -----------------------------------------------------------

/// An output archive of any built-in backend, type-erased. Nothing appears at the path
/// unless commit() runs (the backends write through io::AtomicFile / AtomicDir).
struct Sink {
  std::string format;
  ckpt::ArchiveCaps caps;
  std::function<void(const ckpt::KeyPath&, ckpt::Container)> begin_group;
  std::function<void(const ckpt::KeyPath&)> end_group;
  std::function<void(const ckpt::KeyPath&, const ckpt::TensorView&)> write_tensor;
  std::function<void(const ckpt::KeyPath&, const ckpt::Value&)> write_value;
  std::function<void()> commit;
  /// After commit(): objects (inert records) the backend wrote as something else, "key (class)".
  std::function<std::vector<std::string>()> dropped_objects;
  std::shared_ptr<void> holder;
};
/// Open a writer for `path`: opts.format, else the extension's backend, else native.
Sink open_sink(const fs::path& path, const ckpt::SaveOptions& opts);

/// Walk a validated tree: v.begin_group(path, container) / v.end_group(path) around each
/// dict, v.tensor(path, index), v.value(path, json) — the order ckpt::write_state_dict uses.
template <class V>
void walk_tree(const ckpt::Value& node, V& v, const ckpt::KeyPath& p = {}) {
  if (auto t = node.find("tensor"); t != node.end()) return v.tensor(p, t->template get<std::size_t>());
  if (auto x = node.find("value"); x != node.end()) return v.value(p, *x);
  ckpt::Container c = ckpt::Container::dict;
  if (auto ci = node.find("container"); ci != node.end() && ci->is_string())
    c = ckpt::container_from_name(ci->template get<std::string>()).value_or(ckpt::Container::dict);
  v.begin_group(p, c);
  for (const auto& item : node.at("dict")) walk_tree(item[1], v, p / item[0].template get<std::string>());
  v.end_group(p);
}

// ---- commands (one file each) -------------------------------------------------------------

int cmd_ls(const Args& a);
int cmd_info(const Args& a);
int cmd_formats(const Args& a);
int cmd_stats(const Args& a);
int cmd_diff(const Args& a);
int cmd_verify(const Args& a);
int cmd_convert(const Args& a);

// ---- formatting -------------------------------------------------------------------------

/// A double for JSON: the number, or "inf" / "-inf" / "nan" when it is not finite.
Json number_json(double d);
/// "%g"-style text of a double.
std::string fmt_double(double d);
/// The shape as a JSON array.
Json shape_json(const ckpt::Shape& s);
/// "1.5 MiB".
std::string human_bytes(std::uint64_t n);
/// A JSON value shortened to `max` characters for text output.
std::string short_value(const ckpt::Value& v, std::size_t max = 100);
/// `s` cut to `max` characters, ending in "..." when cut.
std::string abbreviate(std::string s, std::size_t max = 100);

// ---- inert records (Python objects read from .pt files, detail/record.hpp) --------------

/// One record in a checkpoint's tree: a record dict node, or a record inside a value leaf.
struct ObjectInfo {
  ckpt::KeyPath path;
  std::string cls;      ///< "argparse.Namespace"
  std::string summary;  ///< "argparse.Namespace(lr=0.1, epochs=90, ...)", abbreviated
};
/// The records of `o` that stand for objects (not sets, complex numbers or bytes, which are
/// values), outermost first, depth first.
std::vector<ObjectInfo> objects_of(const Opened& o);
/// Is `p` the path of, or under, one of `objects`?
bool under_object(const ckpt::KeyPath& p, const std::vector<ObjectInfo>& objects);
/// The message of an exception on one line.
std::string one_line(std::string s);
/// Left-aligned columns: rows of cells, two spaces apart.
std::string table(const std::vector<std::vector<std::string>>& rows, const std::string& indent = "  ");

}  // namespace ckpt_cli
