// ckpt/archive/memory.hpp — an in-memory backend for tests: "saving" to a name stores owning
// copies of the tensors and the tree skeleton in a process-wide table; loading reads them
// back. It exercises the archive protocol with no file system involved.
#pragma once

#include <array>     // extensions
#include <map>       // store
#include <memory>    // shared entries
#include <mutex>     // store lock
#include <string>    // names
#include <vector>    // tensors

#include "../concepts.hpp"         // archive concepts
#include "../detail/skeleton.hpp"  // tree skeleton

namespace ckpt {

/// Format tag of the in-memory backend.
struct memory_format {};

namespace memory {
struct Stored {
  std::vector<EntryInfo> entries;
  std::vector<Tensor> tensors;
  Value skeleton;
};
struct Store {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const Stored>> items;
};
inline Store& store() {
  static Store s;
  return s;
}
/// Remove a stored checkpoint; returns whether it existed.
inline bool erase(const std::string& name) {
  std::lock_guard lk(store().mu);
  return store().items.erase(name) > 0;
}

class OutputArchive {
 public:
  OutputArchive(const std::filesystem::path& name, const SaveOptions& = {}) : name_(name.string()), s_(std::make_shared<Stored>()) {}
  void begin_group(const KeyPath& p, Container c) { tree_.begin_group(p, c); }
  void end_group(const KeyPath& p) { tree_.end_group(p); }
  void write_value(const KeyPath& p, const Value& v) { tree_.value(p, v); }
  void write_tensor(const KeyPath& p, const TensorView& t) {
    tree_.tensor(p, s_->tensors.size());
    s_->entries.push_back(EntryInfo{p, t.dtype, t.shape, t.nbytes, t.nbytes, "raw"});
    s_->tensors.push_back(Tensor::copy_of(t));
  }
  void commit() {
    s_->skeleton = std::move(tree_.root());
    std::lock_guard lk(store().mu);
    store().items[name_] = std::move(s_);
  }

 private:
  std::string name_;
  std::shared_ptr<Stored> s_;
  detail::SkeletonBuilder tree_;
};

class InputArchive {
 public:
  InputArchive(const std::filesystem::path& name, const LoadOptions& = {}) {
    std::lock_guard lk(store().mu);
    auto it = store().items.find(name.string());
    if (it == store().items.end()) throw io_error("no in-memory checkpoint with this name", name.string(), ENOENT);
    s_ = it->second;
  }
  const std::vector<EntryInfo>& entries() const { return s_->entries; }
  Value skeleton() const { return s_->skeleton; }
  void read_into(std::size_t i, std::span<std::byte> dst) {
    const Tensor& t = s_->tensors.at(i);
    if (dst.size() != t.nbytes()) throw mismatch_error("destination size differs", s_->entries[i].path.str(), std::to_string(t.nbytes()) + " bytes", std::to_string(dst.size()) + " bytes");
    if (t.nbytes()) std::memcpy(dst.data(), t.data(), t.nbytes());
  }
  Tensor read_tensor(std::size_t i) { return s_->tensors.at(i).clone(); }

 private:
  std::shared_ptr<const Stored> s_;
};
}  // namespace memory

template <>
struct archive_traits<memory_format> {
  static constexpr std::string_view name = "memory";
  static constexpr std::array<std::string_view, 0> extensions{};
  static constexpr ArchiveCaps caps{.metadata_tree = true};
  static bool sniff(std::span<const std::byte>) { return false; }  // never a file on disk
  using output_archive = memory::OutputArchive;
  using input_archive = memory::InputArchive;
};

}  // namespace ckpt
