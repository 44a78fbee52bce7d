// tools/archives.cpp — the only place the `ckpt` tool names backends: it opens any checkpoint
// that a backend in ckpt::builtin_formats reads (files by their magic bytes, directories by
// asking each backend) and distributed checkpoints (ckpt/dist.hpp: a directory with
// metadata.json, opened as one checkpoint of global tensors), and writes with any backend.
// Everything else works on the type-erased `Opened` / `Sink`.
#include <algorithm>  // std::min
#include <cerrno>     // ENOENT
#include <tuple>      // builtin_formats
#include <utility>    // index_sequence

#include <ckpt/archive/detect.hpp>  // builtin_formats, sniff_format, visit_format, format_for_save
#include <ckpt/detail/skeleton.hpp> // build_from_skeleton (tree validation)
#include <ckpt/dist/load.hpp>       // distributed checkpoints: metadata, ChunkReader
#include <ckpt/manager_index.hpp>   // ManagerIndex (file name, latest checkpoint)

#include "cli.hpp"

namespace ckpt_cli {
namespace {

template <class Fn>
void for_each_builtin(Fn&& fn) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (fn(std::tuple_element_t<I, ckpt::builtin_formats>{}), ...);
  }(std::make_index_sequence<std::tuple_size_v<ckpt::builtin_formats>>{});
}

std::uint64_t disk_size(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) {
    const auto n = fs::file_size(p, ec);
    return ec ? 0 : n;
  }
  std::uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (it->is_regular_file(e2)) total += it->file_size(e2);
  }
  return total;
}

/// Lowest set bit of every offset, the smallest of them, capped at 4096.
std::optional<std::uint64_t> common_alignment(const std::vector<std::uint64_t>& offsets) {
  std::optional<std::uint64_t> a;
  for (auto off : offsets) {
    const std::uint64_t low = off == 0 ? 4096 : std::min<std::uint64_t>(off & (~off + 1), 4096);
    a = a ? std::min(*a, low) : low;
  }
  return a;
}

/// A tree for a format that stores none: every entry a leaf at its key path (the same rules
/// as ckpt::read_state_dict: no duplicates, no entry nested under another).
ckpt::Value flat_tree(const std::vector<ckpt::EntryInfo>& entries, const std::string& file) {
  if (entries.size() == 1 && entries[0].path.empty()) return ckpt::Value{{"tensor", 0}};
  ckpt::StateDict idx;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& p = entries[i].path;
    if (p.empty() || idx.contains(p)) throw ckpt::format_error("duplicate entry", file, ckpt::format_error::no_offset, p.str());
    try {
      idx[p] = ckpt::Value(i);
    } catch (const ckpt::key_error&) {
      throw ckpt::format_error("entry nested under another entry", file, ckpt::format_error::no_offset, p.str());
    }
  }
  auto conv = [](auto&& self, const ckpt::StateDict& n) -> ckpt::Value {
    if (!n.is_dict()) return ckpt::Value{{"tensor", n.value()}};
    ckpt::Value items = ckpt::Value::array();
    for (const auto& it : n.items()) items.push_back(ckpt::Value::array({it.key, self(self, it.value)}));
    return ckpt::Value{{"dict", std::move(items)}, {"container", "dict"}};
  };
  return conv(conv, idx);
}

template <class F>
void open_with(Opened& o, const fs::path& path, const ckpt::LoadOptions& opts) {
  using Tr = ckpt::archive_traits<F>;
  using A = typename Tr::input_archive;
  auto ar = std::make_shared<A>(path, opts);
  o.format = std::string(Tr::name);
  o.caps = Tr::caps;
  o.entries = ar->entries();
  o.tree = ar->skeleton();
  o.read_tensor = [ar](std::size_t i) { return ar->read_tensor(i); };
  constexpr bool has_verify = requires(A& a, std::size_t i) { a.verify_entry(i); };
  o.check_entry = [ar](std::size_t i) {
    if constexpr (has_verify) ar->verify_entry(i);
    else (void)ar->read_tensor(i);
  };
  // Facts some backends expose.
  if constexpr (requires(A& a) { a.format_version(); }) o.format_version = static_cast<long long>(ar->format_version());
  else if constexpr (requires(A& a) { a.header().version; }) o.format_version = static_cast<long long>(ar->header().version);
  else if constexpr (std::is_same_v<F, ckpt::native_format>) o.format_version = ckpt::native_format_version;  // the only one it reads
  std::vector<std::uint64_t> offsets;
  if constexpr (requires(A& a, std::size_t i) { a.offset(i); }) {
    for (std::size_t i = 0; i < o.entries.size(); ++i) offsets.push_back(ar->offset(i));
  } else if constexpr (requires(A& a) { a.header().header_bytes; }) {
    offsets.push_back(ar->header().header_bytes);
  }
  o.alignment = common_alignment(offsets);
}

}  // namespace

Json caps_json(const ckpt::ArchiveCaps& c) {
  return Json{{"metadata_tree", c.metadata_tree}, {"compression", c.compression}, {"zero_copy_read", c.zero_copy_read},
              {"streaming_write", c.streaming_write}, {"checksums", c.checksums}, {"directory", c.directory}};
}

bool is_manager_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir / ckpt::ManagerIndex::file_name, ec);
}

std::string detect_format(const fs::path& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::is_directory(st)) return ckpt::sniff_format(path);  // io_error / format_error when it cannot
  if (is_dist_dir(path)) return "dist";
  try {
    return ckpt::sniff_format(path);  // in case the registry learns to sniff directories
  } catch (const ckpt::error&) {
  }
  std::string found, known;
  for_each_builtin([&]<class F>(F) {
    using Tr = ckpt::archive_traits<F>;
    if (!known.empty()) known += ", ";
    known += Tr::name;
    if (!found.empty()) return;
    try {
      typename Tr::input_archive probe(path, ckpt::LoadOptions{});
      found = std::string(Tr::name);
    } catch (const ckpt::error&) {
    }
  });
  if (found.empty())
    throw ckpt::format_error("not a checkpoint directory: no " + std::string(ckpt::ManagerIndex::file_name) +
                                 " and no backend reads it (known: " + known + ")",
                             path.string());
  return found;
}

namespace {
/// A distributed checkpoint directory as one checkpoint: its global tensors (each read from the
/// chunks of every rank's file), its tree and values; check_entry verifies every CRC block.
void open_dist(Opened& o, const fs::path& dir, const ckpt::LoadOptions& opts) {
  auto meta = std::make_shared<const ckpt::dist::Metadata>(ckpt::dist::read_metadata(dir, opts));
  o.format = "dist";
  o.caps = {.metadata_tree = true, .checksums = true, .directory = true};
  o.format_version = ckpt::dist::format_version;
  o.tree = meta->tree;
  std::vector<std::uint64_t> offsets;
  for (const auto& t : meta->tensors) {
    ckpt::EntryInfo e;
    e.path = ckpt::KeyPath::parse(t.key);
    e.dtype = t.dtype;
    e.shape = t.shape;
    e.nbytes = static_cast<std::uint64_t>(ckpt::checked_numel(t.shape).value_or(0)) * ckpt::element_size(t.dtype);
    for (const auto& c : t.chunks) {
      e.stored_nbytes += c.nbytes;
      offsets.push_back(c.offset);
    }
    o.entries.push_back(std::move(e));
  }
  o.alignment = common_alignment(offsets);
  auto reader = std::make_shared<ckpt::dist::ChunkReader>(dir, *meta, opts.verify_checksums());
  auto checker = std::make_shared<ckpt::dist::ChunkReader>(dir, *meta, true);
  o.read_tensor = [meta, reader](std::size_t i) { return reader->read_all(meta->tensors.at(i)); };
  o.check_entry = [meta, checker](std::size_t i) {
    for (const auto& c : meta->tensors.at(i).chunks) checker->verify_chunk(meta->tensors[i], c);
  };
}
}  // namespace

bool is_dist_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir / ckpt::dist::metadata_name, ec);
}

Opened open_as(const fs::path& path, const std::string& format, const ckpt::LoadOptions& opts) {
  Opened o;
  o.path = path.string();
  if (format == "dist") open_dist(o, path, opts);
  else ckpt::visit_format(format, [&]<class F>(F) { open_with<F>(o, path, opts); });
  o.size_on_disk = disk_size(path);
  if (o.tree.is_null()) {
    o.flat = true;
    o.tree = flat_tree(o.entries, o.path);
  } else {
    ckpt::detail::build_from_skeleton(o.tree, [](std::size_t, const ckpt::KeyPath&) { return ckpt::Tensor(); }, o.entries.size(), o.path);
  }
  o.tree_paths.resize(o.entries.size());
  std::vector<bool> placed(o.entries.size(), false);
  for (const auto& l : o.leaves())
    if (l.is_tensor && !placed[l.index]) {
      o.tree_paths[l.index] = l.path;
      placed[l.index] = true;
    }
  for (std::size_t i = 0; i < o.entries.size(); ++i)
    if (!placed[i]) o.tree_paths[i] = o.entries[i].path;
  return o;
}

Opened open_checkpoint(const fs::path& path, const ckpt::LoadOptions& opts) {
  if (is_manager_dir(path)) {
    std::string hint;
    try {
      const auto ix = ckpt::ManagerIndex::read(path);
      for (auto it = ix.entries.rbegin(); it != ix.entries.rend(); ++it)
        if (!it->corrupt) {
          hint = " (latest: " + it->path.string() + ")";
          break;
        }
    } catch (const ckpt::error&) {
    }
    throw usage_error("'" + path.string() + "' is a checkpoint manager directory: name one of its checkpoints" + hint +
                      ", or use 'ckpt ls' / 'ckpt verify' on the directory");
  }
  return open_as(path, detect_format(path), opts);
}

std::vector<Leaf> Opened::leaves() const {
  struct Collect {
    std::vector<Leaf> out;
    void begin_group(const ckpt::KeyPath&, ckpt::Container) {}
    void end_group(const ckpt::KeyPath&) {}
    void tensor(const ckpt::KeyPath& p, std::size_t i) { out.push_back(Leaf{p, true, i, nullptr}); }
    void value(const ckpt::KeyPath& p, const ckpt::Value& v) { out.push_back(Leaf{p, false, 0, &v}); }
  } c;
  walk_tree(tree, c);
  return std::move(c.out);
}

std::string Opened::display(const ckpt::KeyPath& p) const {
  if (p.empty()) return "(root)";
  return flat ? p.joined() : p.str();
}

Json formats_json() {
  Json list = Json::array();
  for_each_builtin([&]<class F>(F) {
    using Tr = ckpt::archive_traits<F>;
    Json ext = Json::array();
    for (auto e : Tr::extensions) ext.push_back(std::string(e));
    list.push_back(Json{{"name", std::string(Tr::name)}, {"extensions", std::move(ext)}, {"caps", caps_json(Tr::caps)}});
  });
  return list;
}

Sink open_sink(const fs::path& path, const ckpt::SaveOptions& opts) {
  Sink s;
  ckpt::visit_format(ckpt::format_for_save(path, opts), [&]<class F>(F) {
    using Tr = ckpt::archive_traits<F>;
    using A = typename Tr::output_archive;
    auto ar = std::make_shared<A>(path, opts);
    s.format = std::string(Tr::name);
    s.caps = Tr::caps;
    s.begin_group = [p = ar.get()](const ckpt::KeyPath& k, ckpt::Container c) {
      if constexpr (requires { p->begin_group(k, c); }) p->begin_group(k, c);
    };
    s.end_group = [p = ar.get()](const ckpt::KeyPath& k) {
      if constexpr (requires { p->end_group(k); }) p->end_group(k);
    };
    s.write_tensor = [p = ar.get()](const ckpt::KeyPath& k, const ckpt::TensorView& t) { p->write_tensor(k, t); };
    s.write_value = [p = ar.get()](const ckpt::KeyPath& k, const ckpt::Value& v) { p->write_value(k, v); };
    s.commit = [p = ar.get()] { p->commit(); };
    s.dropped_objects = [p = ar.get()] {
      if constexpr (requires { p->dropped_objects(); }) return p->dropped_objects();
      else return std::vector<std::string>{};
    };
    s.holder = std::move(ar);
  });
  return s;
}

}  // namespace ckpt_cli
