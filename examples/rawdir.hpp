// rawdir.hpp — a backend added from outside the library: a directory holding one raw file per
// tensor plus index.json. Two archive classes and a specialization of ckpt::archive_traits for
// a tag type are all it takes; ckpt::save_as / load_as and CheckpointManager work with it
// unchanged. Used by examples/custom_archive.cpp and by the manager's tests (a directory format).
#pragma once

#include <ckpt/ckpt.hpp>
#include <ckpt/archive_kit.hpp>
#include <ckpt/io/file.hpp>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace rawdir {
namespace fs = std::filesystem;

/// Writes into a temporary directory that AtomicDir renames into place on commit.
class Writer {
 public:
  Writer(const fs::path& dir, const ckpt::SaveOptions& o) : out_(dir, o.fsync) {}
  void begin_group(const ckpt::KeyPath& p, ckpt::Container c) { tree_.begin_group(p, c); }
  void end_group(const ckpt::KeyPath& p) { tree_.end_group(p); }
  void write_value(const ckpt::KeyPath& p, const ckpt::Value& v) { tree_.value(p, v); }
  void write_tensor(const ckpt::KeyPath& p, const ckpt::TensorView& t) {
    const std::string file = "t" + std::to_string(index_.size()) + ".bin";
    out_.write_file(file, t.bytes());
    tree_.tensor(p, index_.size());
    index_.push_back({{"key", p.keys()}, {"dtype", ckpt::name(t.dtype)}, {"shape", t.shape}, {"file", file}});
  }
  void commit() {
    const std::string idx = ckpt::Value{{"tensors", index_}, {"tree", tree_.root()}}.dump(1);
    out_.write_file("index.json", std::as_bytes(std::span(idx)));
    out_.commit();
  }

 private:
  ckpt::io::AtomicDir out_;
  ckpt::SkeletonBuilder tree_;
  ckpt::Value index_ = ckpt::Value::array();
};

class Reader {
 public:
  Reader(const fs::path& dir, const ckpt::LoadOptions&) : dir_(dir) {
    const auto bytes = ckpt::io::read_file(dir / "index.json");
    // The library's JSON reader for files: nesting and size limits, errors naming the file.
    index_ = ckpt::parse_json_limited(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), (dir / "index.json").string());
    for (const auto& j : index_.at("tensors")) {
      ckpt::EntryInfo e;
      for (const auto& k : j.at("key")) e.path = e.path / k.get<std::string>();
      e.dtype = *ckpt::dtype_from_name(j.at("dtype").get<std::string>());
      e.shape = j.at("shape").get<ckpt::Shape>();
      e.nbytes = e.stored_nbytes = *ckpt::checked_nbytes(e.dtype, e.shape);
      entries_.push_back(e);
    }
  }
  const std::vector<ckpt::EntryInfo>& entries() const { return entries_; }
  ckpt::Value skeleton() const { return index_.at("tree"); }
  void read_into(std::size_t i, std::span<std::byte> dst) {
    ckpt::io::File f = ckpt::io::File::open_read(dir_ / index_["tensors"][i]["file"].get<std::string>());
    if (f.size() != dst.size()) throw ckpt::format_error("tensor file has the wrong size", f.path(), 0, entries_[i].path.str(), std::to_string(dst.size()), std::to_string(f.size()));
    f.pread_all(dst, 0);
  }
  ckpt::Tensor read_tensor(std::size_t i) {
    ckpt::Tensor t(entries_[i].dtype, entries_[i].shape);
    read_into(i, {t.mutable_data(), t.nbytes()});
    return t;
  }

 private:
  fs::path dir_;
  ckpt::Value index_;
  std::vector<ckpt::EntryInfo> entries_;
};

struct format {};  // the tag
}  // namespace rawdir

template <>
struct ckpt::archive_traits<rawdir::format> {
  static constexpr std::string_view name = "rawdir";
  static constexpr std::array<std::string_view, 1> extensions{".rawdir"};
  static constexpr ArchiveCaps caps{.metadata_tree = true, .streaming_write = true, .directory = true};
  static bool sniff(std::span<const std::byte>) { return false; }  // a directory has no magic bytes
  using output_archive = rawdir::Writer;
  using input_archive = rawdir::Reader;
};
static_assert(ckpt::ArchiveFormat<rawdir::format>);
