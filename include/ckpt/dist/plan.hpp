// ckpt/dist/plan.hpp — the first half of a collective save. `describe` flattens one rank's
// StateDict into the tensors it holds (sharded tensors' chunks; replicated tensors as one chunk
// covering them) and the tree's skeleton; `description` is what the rank sends the coordinator.
// `make_plan` is the coordinator's work on all of them: the same keys, dtypes and shapes on every
// rank, every sharded tensor tiled exactly (an error naming the key and the overlap or gap
// otherwise), replicated tensors equal on every rank (by CRC-32), each given to one rank (largest
// first, to the rank with the fewest bytes so far), each rank's data file laid out. The result is
// the metadata still lacking CRCs, and per rank the list of chunks it writes at which offsets.
#pragma once

#include <algorithm>  // std::stable_sort, std::min_element
#include <cstddef>    // std::size_t
#include <cstdint>    // byte counts
#include <string>     // keys
#include <unordered_map>  // key -> index
#include <utility>    // std::move
#include <vector>     // per-rank lists

#include "../detail/crc32.hpp"  // replicated tensors compared by CRC-32
#include "../error.hpp"       // error, key_error, mismatch_error
#include "../state_dict.hpp"  // StateDict, KeyPath, Value
#include "comm.hpp"           // Bytes
#include "metadata.hpp"       // Metadata, rank_file_name, data_alignment
#include "sharded.hpp"        // ShardedTensor, Chunk

namespace ckpt::dist {

/// A JSON value as the bytes the collectives carry (CBOR), and back.
inline Bytes pack(const Value& v) {
  const auto c = Value::to_cbor(v);
  const auto* p = reinterpret_cast<const std::byte*>(c.data());
  return Bytes(p, p + c.size());
}
inline Value unpack(std::span<const std::byte> b) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
  return Value::from_cbor(p, p + b.size());
}

/// One tensor of a rank's state: a sharded tensor (this rank's chunks of it) or a replicated
/// tensor (one chunk at the origin holding all of it).
struct LocalTensor {
  std::string key;  ///< escaped dotted key path
  DType dtype = DType::f32;
  Shape shape;      ///< global shape
  bool sharded = false;
  std::vector<Chunk> chunks;
};
/// A rank's state, flattened: its tensors in tree order and the skeleton of the tree, where
/// {"tensor": i} is tensors[i] (a sharded tensor is one leaf).
struct LocalState {
  std::vector<LocalTensor> tensors;
  Value tree;
};

/// Flatten a rank's state (see LocalState). A malformed sharded node is a mismatch_error at its key.
inline LocalState describe(const StateDict& sd) {
  LocalState out;
  auto walk = [&](auto&& self, const StateDict& n, const KeyPath& p) -> Value {
    if (ShardedTensor::is_marker(n)) {
      ShardedTensor t;
      try {
        t = ShardedTensor::from_state_dict(n);
      } catch (const mismatch_error& e) {
        rethrow_with_prefix(e, p);
      }
      out.tensors.push_back({p.str(), t.dtype(), t.global_shape(), true, std::move(t.chunks())});
      return {{"tensor", out.tensors.size() - 1}};
    }
    switch (n.kind()) {
      case StateDict::Kind::tensor: {
        const Tensor& t = n.tensor();
        out.tensors.push_back({p.str(), t.dtype(), t.shape(), false, {Chunk{Shape(t.dim(), 0), t}}});
        return {{"tensor", out.tensors.size() - 1}};
      }
      case StateDict::Kind::value: return {{"value", n.value()}};
      case StateDict::Kind::dict: break;
    }
    Value items = Value::array();
    for (const auto& it : n.items()) items.push_back(Value::array({it.key, self(self, it.value, p / it.key)}));
    return {{"dict", std::move(items)}, {"container", container_name(n.container())}};
  };
  out.tree = walk(walk, sd, KeyPath{});
  return out;
}

/// What a rank tells the coordinator: per tensor [key, dtype, shape, sharded, [[offsets, shape],
/// ...], crc], where crc is a replicated tensor's CRC-32 when `check_replicated` (else null), so
/// the coordinator can refuse replicated tensors that differ between ranks.
inline Value description(const LocalState& s, bool check_replicated = true) {
  Value ts = Value::array();
  for (const auto& t : s.tensors) {
    Value boxes = Value::array();
    for (const auto& c : t.chunks) boxes.push_back(Value::array({c.offsets, c.data.shape()}));
    const Value crc = !t.sharded && check_replicated ? Value(ckpt::detail::crc32(t.chunks[0].data.bytes())) : Value();
    ts.push_back(Value::array({t.key, std::string(name(t.dtype)), t.shape, t.sharded, std::move(boxes), crc}));
  }
  return ts;
}

/// One chunk a rank writes: its tensor and chunk in the rank's LocalState, and its byte offset.
struct Write {
  std::size_t tensor = 0, chunk = 0;
  std::uint64_t offset = 0;
};
/// The coordinator's plan: the metadata (CRCs still empty), and per rank the chunks it writes
/// (`writes[r]`, in file order) with, for each, its place in the metadata (`where[r]`: tensor
/// and chunk index).
struct Plan {
  Metadata meta;
  std::vector<std::vector<Write>> writes;
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> where;
};

/// The plan for the descriptions of all ranks (`described[r]` from rank r) and the coordinator's
/// tree. Errors (ckpt::error subclasses) name `path` and the key.
inline Plan make_plan(const std::vector<Value>& described, const Value& tree, std::uint64_t crc_block_bytes, const std::string& path) {
  const std::size_t ranks = described.size();
  struct Entry { std::size_t rank, local, chunk; Box box; };
  struct Global { std::string key; DType dtype; Shape shape; bool sharded; Value crc; std::vector<Entry> chunks = {}; std::uint64_t nbytes = 0; std::vector<std::size_t> local_on = {}; };
  std::vector<Global> g;
  std::unordered_map<std::string, std::size_t> index;
  auto shape_of = [](const Value& v) { return v.get<Shape>(); };
  for (std::size_t r = 0; r < ranks; ++r) {
    std::vector<bool> seen(g.size(), false);
    std::size_t local = 0;
    for (const auto& t : described[r]) {
      const std::string key = t[0].get<std::string>();
      const DType dtype = *dtype_from_name(t[1].get<std::string>());
      const Shape shape = shape_of(t[2]);
      const bool sharded = t[3].get<bool>();
      auto it = index.find(key);
      if (r == 0) {
        if (it != index.end()) throw key_error("key appears twice in rank 0's state", path, key);
        it = index.emplace(key, g.size()).first;
        g.push_back({key, dtype, shape, sharded, t[5]});
        seen.push_back(true);
      } else {
        if (it == index.end()) throw key_error("rank " + std::to_string(r) + " holds a tensor rank 0 does not", path, key);
        const Global& want = g[it->second];
        if (seen[it->second]) throw key_error("key appears twice in rank " + std::to_string(r) + "'s state", path, key);
        seen[it->second] = true;
        auto what = [&](const char* w) { return std::string(w) + " differs between rank 0 and rank " + std::to_string(r); };
        if (want.sharded != sharded) throw mismatch_error(what("sharding"), key, want.sharded ? "sharded" : "replicated", sharded ? "sharded" : "replicated", path);
        if (want.dtype != dtype) throw mismatch_error(what("dtype"), key, std::string(name(want.dtype)), std::string(name(dtype)), path);
        if (want.shape != shape) throw mismatch_error(what("global shape"), key, shape_string(want.shape), shape_string(shape), path);
        if (!want.sharded && want.crc.is_number() && t[5].is_number() && want.crc != t[5])
          throw mismatch_error(what("replicated tensor's value"), key, "CRC-32 " + ckpt::detail::crc_hex(want.crc.get<std::uint32_t>()), "CRC-32 " + ckpt::detail::crc_hex(t[5].get<std::uint32_t>()), path);
      }
      Global& gt = g[it->second];
      gt.local_on.resize(ranks);
      gt.local_on[r] = local;
      std::size_t c = 0;
      if (gt.sharded || r == 0)  // a replicated tensor's one chunk: rank 0's stands for all
        for (const auto& b : t[4]) gt.chunks.push_back({r, local, c++, {shape_of(b[0]), shape_of(b[1])}});
      ++local;
    }
    for (std::size_t i = 0; i < seen.size(); ++i)
      if (!seen[i]) throw key_error("rank " + std::to_string(r) + " lacks a tensor rank 0 holds", path, g[i].key);
  }

  // Tiling, and the bytes each rank already writes.
  std::vector<std::uint64_t> load(ranks, 0);
  for (auto& t : g) {
    t.nbytes = *checked_nbytes(t.dtype, t.shape);
    if (!t.sharded) continue;
    std::vector<Box> boxes;
    for (const auto& e : t.chunks) boxes.push_back(e.box);
    if (auto why = tiling_problem(t.shape, boxes)) throw error("the chunks of a sharded tensor do not tile it: " + *why, path, t.key);
    for (const auto& e : t.chunks) load[e.rank] += *checked_nbytes(t.dtype, e.box.shape);
  }
  // Replicated tensors: largest first, each to the rank with the fewest bytes so far (the lowest
  // such rank on ties); the chunk is then that rank's own.
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < g.size(); ++i)
    if (!g[i].sharded) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return g[a].nbytes > g[b].nbytes; });
  for (std::size_t i : order) {
    const auto r = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[r] += g[i].nbytes;
    g[i].chunks[0].rank = r;
    g[i].chunks[0].local = g[i].local_on[r];
  }

  // Layout: tensors in tree order; each rank's chunks at aligned offsets in its own file.
  Plan plan;
  plan.meta.world_size = static_cast<int>(ranks);
  plan.meta.crc_block_bytes = crc_block_bytes;
  plan.meta.tree = tree;
  plan.writes.resize(ranks);
  plan.where.resize(ranks);
  std::vector<std::uint64_t> end(ranks, 0);
  for (std::size_t ti = 0; ti < g.size(); ++ti) {
    const auto& t = g[ti];
    SavedTensor st{t.key, t.dtype, t.shape, {}};
    for (const auto& e : t.chunks) {
      const std::uint64_t at = (end[e.rank] + data_alignment - 1) / data_alignment * data_alignment;
      const std::uint64_t n = *checked_nbytes(t.dtype, e.box.shape);
      end[e.rank] = at + n;
      plan.where[e.rank].emplace_back(ti, st.chunks.size());
      plan.writes[e.rank].push_back({e.local, e.chunk, at});
      st.chunks.push_back({e.box, e.rank, at, n, {}});
    }
    plan.meta.tensors.push_back(std::move(st));
  }
  for (std::size_t r = 0; r < ranks; ++r) plan.meta.files.push_back({rank_file_name(static_cast<int>(r)), end[r]});
  return plan;
}

}  // namespace ckpt::dist
