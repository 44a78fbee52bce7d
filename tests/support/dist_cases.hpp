// Test helpers for distributed checkpoints: one set of global tensors (several dtypes, 0-d and
// empty ones, nested keys, replicated tensors and values) and two chunkings of them for any
// number of ranks — layout 0 (what a save uses: rows, columns, an uneven 2-D grid, a 0-d tensor
// held by one rank) and layout 1 (what a load asks for: mostly the other way round, overlapping
// requests allowed). Each rank's state, the request, and the check that loaded chunks equal the
// global tensors bit for bit.
#pragma once

#include <ckpt/dist.hpp>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ckpt_test::dist {
using ckpt::DType;
using ckpt::Shape;
using ckpt::Tensor;
using ckpt::dist::Box;

struct Spec {
  std::string key;  // dotted path
  DType dtype;
  Shape shape;
  bool sharded;
};

inline const std::vector<Spec>& specs() {
  static const std::vector<Spec> s = {
      {"w", DType::f32, {7, 5}, true},            // layout 0: rows; 1: columns
      {"c", DType::f64, {4, 9}, true},            // 0: columns; 1: rows
      {"u", DType::i32, {10, 3, 2}, true},        // 0: uneven 3x2 grid, round robin; 1: dim 1
      {"s", DType::bf16, {}, true},               // 0-d: 0: last rank; 1: every rank
      {"e", DType::u8, {0, 4}, true},             // empty: 0: dim 1; 1: dim 0
      {"z", DType::boolean, {5}, true},           // 0: rows; 1: all on rank 0
      {"opt.m", DType::f16, {6, 4}, true},        // nested: 0: rows; 1: columns
      {"b", DType::i64, {3}, false},              // replicated
      {"opt.h", DType::f16, {2, 2}, false},
      {"r0", DType::f64, {}, false},              // 0-d replicated
      {"er", DType::f32, {0}, false},             // empty replicated
  };
  return s;
}

inline Tensor global_tensor(const Spec& s) {
  std::uint64_t seed = 1469598103934665603ull;
  for (char c : s.key) seed = (seed ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return random_tensor(s.dtype, s.shape, seed);
}

/// The boxes rank `rank` of `size` holds of `s` under `layout`.
inline std::vector<Box> boxes(const Spec& s, int layout, int rank, int size) {
  using ckpt::dist::split_box;
  if (!s.sharded) return {};
  const auto r = static_cast<std::int64_t>(rank), n = static_cast<std::int64_t>(size);
  if (s.key == "w") return {split_box(s.shape, layout == 0 ? 0 : 1, r, n)};
  if (s.key == "c") return {split_box(s.shape, layout == 0 ? 1 : 0, r, n)};
  if (s.key == "opt.m") return {split_box(s.shape, layout == 0 ? 0 : 1, r, n)};
  if (s.key == "e") return {split_box(s.shape, layout == 0 ? 1 : 0, r, n)};
  if (s.key == "z") return layout == 0 ? std::vector<Box>{split_box(s.shape, 0, r, n)} : rank == 0 ? std::vector<Box>{Box{{0}, s.shape}} : std::vector<Box>{};
  if (s.key == "s") return layout == 1 || rank == size - 1 ? std::vector<Box>{Box{}} : std::vector<Box>{};
  if (s.key == "u") {
    if (layout == 1) return {split_box(s.shape, 1, r, n)};
    const std::int64_t rows[] = {0, 1, 6, 10}, cols[] = {0, 1, 2};
    std::vector<Box> out;
    int i = 0;
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 2; ++b, ++i)
        if (i % size == rank) out.push_back(Box{{rows[a], 0, cols[b]}, {rows[a + 1] - rows[a], 3, cols[b + 1] - cols[b]}});
    return out;
  }
  return {};
}

/// The elements of `box` of `global`, as a tensor of the box's shape.
inline Tensor extract(const Tensor& global, const Box& box) {
  Tensor out(global.dtype(), box.shape);
  const auto es = static_cast<std::size_t>(ckpt::element_size(global.dtype()));
  const Box whole{Shape(global.dim(), 0), global.shape()};
  if (out.nbytes())
    ckpt::dist::for_each_run(box, whole, box, [&](std::int64_t s, std::int64_t d, std::int64_t n) {
      std::memcpy(out.mutable_data() + d * es, global.data() + s * es, n * es);
    });
  return out;
}

/// The boxes ranks `ranks` of `size` hold together (one process standing for several ranks).
inline std::vector<Box> boxes(const Spec& s, int layout, const std::vector<int>& ranks, int size) {
  std::vector<Box> out;
  for (int r : ranks)
    for (const auto& b : boxes(s, layout, r, size)) out.push_back(b);
  return out;
}
/// Every rank of a world of `size`.
inline std::vector<int> all_ranks(int size) {
  std::vector<int> v;
  for (int r = 0; r < size; ++r) v.push_back(r);
  return v;
}

/// The state of ranks `ranks` of `size` under `layout` (one rank, or one process standing for
/// several): sharded tensors' chunks cut from the global tensors, replicated tensors whole,
/// values. With `zeros`, the same structure with zero-filled tensors (a request for a load).
inline ckpt::StateDict state(int layout, const std::vector<int>& ranks, int size, bool zeros = false) {
  ckpt::StateDict sd;
  sd["step"] = 42;
  for (const auto& s : specs()) {
    const Tensor g = global_tensor(s);
    if (!s.sharded) {
      sd[s.key] = zeros ? Tensor(s.dtype, s.shape) : g;
      continue;
    }
    ckpt::dist::ShardedTensor t(s.dtype, s.shape);
    for (const auto& b : boxes(s, layout, ranks, size)) t.add_chunk({b.offsets, zeros ? Tensor(s.dtype, b.shape) : extract(g, b)});
    sd[s.key] = t.state_dict();
  }
  sd["opt.name"] = "adam";
  return sd;
}

/// Empty when `got` (what ranks `ranks` of `size` loaded under `layout`) equals the global
/// tensors bit for bit; else what differs.
inline std::string check_loaded(const ckpt::StateDict& got, int layout, const std::vector<int>& ranks, int size) {
  std::string bad;
  if (!got.contains("step") || got.at("step").value() != 42) bad += "step; ";
  if (!got.contains("opt.name") || got.at("opt.name").value() != "adam") bad += "opt.name; ";
  for (const auto& s : specs()) {
    const Tensor g = global_tensor(s);
    const auto* node = got.find(s.key);
    if (!node) {
      bad += s.key + " missing; ";
      continue;
    }
    if (!s.sharded) {
      if (!node->is_tensor() || !(node->tensor() == g)) bad += s.key + " differs; ";
      continue;
    }
    const auto t = ckpt::dist::ShardedTensor::from_state_dict(*node);
    const auto want = boxes(s, layout, ranks, size);
    if (t.chunks().size() != want.size()) {
      bad += s.key + " has " + std::to_string(t.chunks().size()) + " chunks; ";
      continue;
    }
    for (std::size_t i = 0; i < want.size(); ++i)
      if (!(t.chunks()[i].box() == want[i]) || !(t.chunks()[i].data == extract(g, want[i]))) bad += s.key + " chunk " + ckpt::dist::box_string(want[i]) + " differs; ";
  }
  return bad;
}

/// The whole state as one process would hold it: the global tensors, and the values.
inline ckpt::StateDict global_state() {
  ckpt::StateDict sd;
  sd["step"] = 42;
  for (const auto& s : specs()) sd[s.key] = global_tensor(s);
  sd["opt.name"] = "adam";
  return sd;
}

/// Every global tensor equal to what `load_global` gave.
inline std::string check_global(const ckpt::StateDict& got) {
  std::string bad;
  if (!got.contains("step") || got.at("step").value() != 42) bad += "step; ";
  for (const auto& s : specs()) {
    const auto* node = got.find(s.key);
    if (!node || !node->is_tensor() || !(node->tensor() == global_tensor(s))) bad += s.key + "; ";
  }
  return bad;
}

}  // namespace ckpt_test::dist
