// ckpt/dist/sharded.hpp — `ckpt::dist::ShardedTensor`: a tensor spread over ranks, as this rank
// sees it — the global dtype and shape, and the chunks it holds (each an offset vector into the
// global tensor and a local ckpt::Tensor of the chunk's shape), as DCP's ShardedTensor metadata
// or a DTensor's local shards. It is Checkpointable: its StateDict is a dict node
//   {"$sharded": {"dtype": "f32", "shape": [..]}, "chunks": [{"offsets": [..], "data": <tensor>}, ..]}
// so a model holding one saves it with CKPT_FIELDS or state_dict() beside replicated tensors and
// JSON values, and the distributed save and load (dist/save.hpp, dist/load.hpp) recognize it.
#pragma once

#include <cstddef>   // std::size_t
#include <cstring>   // std::memcpy into loaded chunks
#include <optional>  // parsed markers
#include <string>    // keys
#include <utility>   // std::move
#include <vector>    // chunks

#include "../concepts.hpp"    // load hooks' signature
#include "../detail/json_fields.hpp"  // number_as: offsets from JSON that may come from a file
#include "../error.hpp"       // mismatch_error
#include "../state_dict.hpp"  // StateDict, Value
#include "../tensor.hpp"      // Tensor
#include "box.hpp"            // Box, box_outside

namespace ckpt::dist {

/// The key that marks a StateDict dict node as a sharded tensor.
inline constexpr std::string_view sharded_marker = "$sharded";

/// One block of a sharded tensor held by this rank: where it starts in the global tensor, and
/// its elements (a tensor of the block's shape, row-major).
struct Chunk {
  Shape offsets;
  Tensor data;
  Box box() const { return {offsets, data.shape()}; }
};

/// A global tensor of which this rank holds `chunks()`. The chunks of all ranks together must
/// tile the global tensor exactly for a save (checked then, by the coordinator).
class ShardedTensor {
 public:
  ShardedTensor() = default;
  /// Throws mismatch_error when a chunk's dtype differs or it leaves the global shape.
  ShardedTensor(DType dtype, Shape global_shape, std::vector<Chunk> chunks = {})
      : dtype_(dtype), shape_(std::move(global_shape)) {
    if (!checked_numel(shape_)) throw mismatch_error("invalid global shape", "", "non-negative dims whose product fits in int64", shape_string(shape_));
    for (auto& c : chunks) add_chunk(std::move(c));
  }
  /// Zero-filled chunks at the given boxes.
  static ShardedTensor zeros(DType dtype, Shape global_shape, const std::vector<Box>& boxes) {
    ShardedTensor t(dtype, std::move(global_shape));
    for (const auto& b : boxes) t.add_chunk({b.offsets, Tensor(dtype, b.shape)});
    return t;
  }

  DType dtype() const noexcept { return dtype_; }
  const Shape& global_shape() const noexcept { return shape_; }
  const std::vector<Chunk>& chunks() const noexcept { return chunks_; }
  std::vector<Chunk>& chunks() noexcept { return chunks_; }
  void add_chunk(Chunk c) {
    if (c.data.dtype() != dtype_) throw mismatch_error("chunk dtype differs from the sharded tensor's", "", std::string(name(dtype_)), std::string(name(c.data.dtype())));
    if (auto why = box_outside(c.box(), shape_)) throw mismatch_error(*why, "", "a chunk inside " + shape_string(shape_), box_string(c.box()));
    chunks_.push_back(std::move(c));
  }

  /// The marker node (see the top of the file). Chunk tensors are shared, not copied.
  StateDict state_dict() const {
    StateDict sd;
    sd.set(std::string(sharded_marker), StateDict(Value{{"dtype", std::string(name(dtype_))}, {"shape", shape_}}));
    StateDict list = StateDict::dict(Container::list);
    for (std::size_t i = 0; i < chunks_.size(); ++i) {
      StateDict c;
      c.set("offsets", StateDict(Value(chunks_[i].offsets)));
      c.set("data", StateDict(chunks_[i].data));
      list.set(std::to_string(i), std::move(c));
    }
    sd.set("chunks", std::move(list));
    return sd;
  }
  /// Fill this tensor's chunks from a marker node that holds, for each of them, a chunk at the
  /// same offsets with the same shape (what dist::load gives): copied into writable chunk
  /// tensors (so tensors sharing their bytes see the values), put in place of read-only ones.
  LoadReport load_state_dict(const StateDict& sd, const LoadOptions& = {}) {
    const ShardedTensor got = from_state_dict(sd);
    if (got.dtype_ != dtype_) throw mismatch_error("dtype mismatch", "", std::string(name(dtype_)), std::string(name(got.dtype_)));
    if (got.shape_ != shape_) throw mismatch_error("global shape mismatch", "", shape_string(shape_), shape_string(got.shape_));
    for (auto& mine : chunks_) {
      const Chunk* src = nullptr;
      for (const auto& c : got.chunks_)
        if (c.box() == mine.box()) src = &c;
      if (!src) throw mismatch_error("no loaded chunk for this rank's chunk", "", box_string(mine.box()), std::to_string(got.chunks_.size()) + " other chunks");
      if (mine.data.writable()) {
        if (src->data.nbytes()) std::memcpy(mine.data.mutable_data(), src->data.data(), src->data.nbytes());
      } else {
        mine.data = src->data;
      }
    }
    return {};
  }

  /// Whether `sd` is a sharded tensor's marker node.
  static bool is_marker(const StateDict& sd) { return sd.is_dict() && sd.find_key(sharded_marker) != nullptr; }
  /// The sharded tensor a marker node describes; mismatch_error when the node is malformed.
  static ShardedTensor from_state_dict(const StateDict& sd) {
    auto bad = [](const std::string& what) { return mismatch_error("invalid sharded tensor node: " + what, "", "a node written by ShardedTensor::state_dict()", what); };
    if (!is_marker(sd)) throw bad("no \"$sharded\" member");
    const StateDict& head = *sd.find_key(sharded_marker);
    if (!head.is_value() || !head.value().is_object()) throw bad("\"$sharded\" is not an object");
    const Value& h = head.value();
    const auto dt = h.contains("dtype") && h["dtype"].is_string() ? dtype_from_name(h["dtype"].get<std::string>()) : std::nullopt;
    if (!dt) throw bad("no valid \"dtype\"");
    const auto shape = shape_of(h.contains("shape") ? h["shape"] : Value());
    if (!shape) throw bad("no valid \"shape\"");
    ShardedTensor t(*dt, *shape);
    const StateDict* list = sd.find_key("chunks");
    if (!list || !list->is_dict()) throw bad("no \"chunks\" list");
    for (const auto& it : list->items()) {
      const StateDict* off = it.value.find_key("offsets");
      const StateDict* data = it.value.find_key("data");
      if (!off || !off->is_value() || !data || !data->is_tensor()) throw bad("chunk " + it.key + " lacks \"offsets\" or \"data\"");
      auto o = shape_of(off->value());
      if (!o) throw bad("chunk " + it.key + " has invalid offsets");
      t.add_chunk({std::move(*o), data->tensor()});
    }
    return t;
  }

 private:
  static std::optional<Shape> shape_of(const Value& v) {
    if (!v.is_array()) return std::nullopt;
    Shape s;
    for (const auto& d : v) {
      const auto n = detail::number_as<std::int64_t>(d);
      if (!n || d.is_boolean()) return std::nullopt;
      s.push_back(*n);
    }
    return s;
  }
  DType dtype_ = DType::f32;
  Shape shape_;
  std::vector<Chunk> chunks_;
};

}  // namespace ckpt::dist
