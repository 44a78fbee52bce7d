// ckpt/dist/box.hpp — the arithmetic of chunks: a `Box` (offsets + shape) inside a global
// tensor, the intersection of two boxes, the row-major runs of a sub-block that are contiguous in
// both a source and a destination box (what a resharding read copies, one run at a time), the
// check that a set of boxes tiles a global shape exactly (no overlap, no gap, nothing outside),
// and an even split along one dimension (torch.tensor_split's rule).
#pragma once

#include <algorithm>  // std::sort, std::max, std::min
#include <cstddef>    // std::size_t
#include <cstdint>    // int64 coordinates
#include <optional>   // no intersection
#include <string>     // messages
#include <vector>     // boxes

#include "../error.hpp"   // mismatch_error
#include "../tensor.hpp"  // Shape, shape_string, checked_numel

namespace ckpt::dist {

/// A block of a global tensor: the element at `offsets` and `shape` elements on from it in each
/// dimension. A 0-d tensor's only box has no offsets and no shape.
struct Box {
  Shape offsets;
  Shape shape;

  std::size_t dim() const noexcept { return shape.size(); }
  /// Number of elements (the shape is assumed valid: non-negative, product in range).
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  bool empty() const noexcept {
    for (auto d : shape)
      if (d == 0) return true;
    return false;
  }
  friend bool operator==(const Box&, const Box&) = default;
};

/// "[0:2, 3:6]" (half-open ranges per dimension); "[]" for the 0-d box.
inline std::string box_string(const Box& b) {
  std::string s = "[";
  for (std::size_t i = 0; i < b.dim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(b.offsets[i]) + ":" + std::to_string(b.offsets[i] + b.shape[i]);
  }
  return s + "]";
}

/// The elements two boxes (of the same number of dimensions) have in common; nullopt when none.
inline std::optional<Box> intersect(const Box& a, const Box& b) {
  Box r;
  for (std::size_t i = 0; i < a.dim(); ++i) {
    const auto lo = std::max(a.offsets[i], b.offsets[i]);
    const auto hi = std::min(a.offsets[i] + a.shape[i], b.offsets[i] + b.shape[i]);
    if (hi <= lo) return std::nullopt;
    r.offsets.push_back(lo);
    r.shape.push_back(hi - lo);
  }
  if (a.empty() || b.empty()) return std::nullopt;
  return r;
}

/// Whether `b` has valid dimensions, lies inside `global` and has `global`'s rank; otherwise
/// what is wrong, for a message.
inline std::optional<std::string> box_outside(const Box& b, const Shape& global) {
  if (b.offsets.size() != global.size() || b.shape.size() != global.size())
    return "chunk with offsets " + shape_string(b.offsets) + " and shape " + shape_string(b.shape) + " does not have the tensor's " + std::to_string(global.size()) + " dimensions";
  for (std::size_t i = 0; i < global.size(); ++i) {
    if (b.offsets[i] < 0 || b.shape[i] < 0 || b.offsets[i] > global[i] || b.shape[i] > global[i] - b.offsets[i])
      return "chunk " + box_string(b) + " (offsets " + shape_string(b.offsets) + ", shape " + shape_string(b.shape) + ") leaves the global shape " + shape_string(global);
  }
  return std::nullopt;
}

/// Calls f(src_element, dst_element, count) for each run of `part`'s elements that is
/// contiguous in both `src` and `dst` (row-major boxes that both contain `part`), in row-major
/// order of `part` — so source positions ascend. Positions count elements from each box's start.
template <class F>
void for_each_run(const Box& part, const Box& src, const Box& dst, F&& f) {
  const std::size_t d = part.dim();
  if (part.empty()) return;
  if (d == 0) return f(std::int64_t{0}, std::int64_t{0}, std::int64_t{1});
  Shape ss(d), ds(d);  // row-major strides
  std::int64_t s = 1, t = 1;
  for (std::size_t j = d; j-- > 0;) {
    ss[j] = s;
    ds[j] = t;
    s *= src.shape[j];
    t *= dst.shape[j];
  }
  // Dimensions k.. form one run: those after k are whole in part, src and dst alike.
  std::size_t k = d - 1;
  while (k > 0 && part.shape[k] == src.shape[k] && part.shape[k] == dst.shape[k]) --k;
  std::int64_t run = 1;
  for (std::size_t j = k; j < d; ++j) run *= part.shape[j];
  std::int64_t src0 = 0, dst0 = 0;
  for (std::size_t j = 0; j < d; ++j) {
    src0 += (part.offsets[j] - src.offsets[j]) * ss[j];
    dst0 += (part.offsets[j] - dst.offsets[j]) * ds[j];
  }
  std::vector<std::int64_t> idx(k, 0);  // odometer over dimensions 0..k-1
  for (;;) {
    std::int64_t so = src0, dof = dst0;
    for (std::size_t j = 0; j < k; ++j) {
      so += idx[j] * ss[j];
      dof += idx[j] * ds[j];
    }
    f(so, dof, run);
    std::size_t j = k;
    while (j > 0) {
      if (++idx[j - 1] < part.shape[j - 1]) break;
      idx[j - 1] = 0;
      --j;
    }
    if (j == 0) return;
  }
}

/// Whether `chunks` tile `global` exactly: each inside it, no element in two of them, every
/// element in one. nullopt when they do; otherwise what is wrong ("chunk [0:2, 0:3] ... overlaps
/// chunk [1:3, 0:3] in [1:2, 0:3]", "elements [2:4, 0:6] are in no chunk"), for a message.
inline std::optional<std::string> tiling_problem(const Shape& global, const std::vector<Box>& chunks) {
  const auto total = checked_numel(global);
  if (!total) return "invalid global shape " + shape_string(global);
  std::vector<const Box*> live;  // the chunks with elements
  for (const auto& b : chunks) {
    if (auto why = box_outside(b, global)) return why;
    if (!b.empty()) live.push_back(&b);
  }
  // Overlaps: sweep along the dimension where the chunks start at the most places (rows for a
  // row split, columns for a column split), comparing each chunk with those still open there.
  std::size_t sweep = 0, most = 0;
  for (std::size_t j = 0; j < global.size(); ++j) {
    std::vector<std::int64_t> starts;
    starts.reserve(live.size());
    for (const Box* b : live) starts.push_back(b->offsets[j]);
    std::sort(starts.begin(), starts.end());
    const auto distinct = static_cast<std::size_t>(std::unique(starts.begin(), starts.end()) - starts.begin());
    if (distinct > most) most = distinct, sweep = j;
  }
  std::sort(live.begin(), live.end(), [&](const Box* a, const Box* b) {
    return global.empty() ? false : a->offsets[sweep] < b->offsets[sweep];
  });
  std::vector<const Box*> open;
  std::int64_t covered = 0;
  for (const Box* b : live) {
    if (!global.empty())
      std::erase_if(open, [&](const Box* o) { return o->offsets[sweep] + o->shape[sweep] <= b->offsets[sweep]; });
    for (const Box* o : open)
      if (auto x = intersect(*o, *b))
        return "chunk " + box_string(*o) + " overlaps chunk " + box_string(*b) + " in " + box_string(*x);
    open.push_back(b);
    covered += b->numel();  // no overlap so far: at most *total
  }
  if (covered == *total) return std::nullopt;
  // A gap: find the first cell of the grid the chunk edges cut, in row-major order, that no
  // chunk holds (each cell is wholly inside or outside every chunk). Bounded work: beyond it,
  // the count alone.
  const std::size_t d = global.size();
  std::vector<std::vector<std::int64_t>> cuts(d);
  std::size_t cells = 1;
  for (std::size_t j = 0; j < d; ++j) {
    cuts[j] = {0, global[j]};
    for (const Box* b : live) {
      cuts[j].push_back(b->offsets[j]);
      cuts[j].push_back(b->offsets[j] + b->shape[j]);
    }
    std::sort(cuts[j].begin(), cuts[j].end());
    cuts[j].erase(std::unique(cuts[j].begin(), cuts[j].end()), cuts[j].end());
    cells *= cuts[j].size() - 1;
    if (cells * (live.size() + 1) > 10'000'000) {
      cells = 0;
      break;
    }
  }
  const std::string count = std::to_string(*total - covered) + " of " + std::to_string(*total) + " elements are in no chunk";
  if (cells == 0) return count;
  std::vector<std::size_t> cell(d, 0);
  for (std::size_t c = 0; c < cells; ++c) {
    Box cb;
    for (std::size_t j = 0; j < d; ++j) {
      cb.offsets.push_back(cuts[j][cell[j]]);
      cb.shape.push_back(cuts[j][cell[j] + 1] - cuts[j][cell[j]]);
    }
    bool held = false;
    for (const Box* b : live) held = held || intersect(*b, cb).has_value();
    if (!held) return "elements " + box_string(cb) + " are in no chunk (" + count + ")";
    for (std::size_t j = d; j-- > 0;) {
      if (++cell[j] < cuts[j].size() - 1) break;
      cell[j] = 0;
    }
  }
  return count;
}

/// Part `index` of `count` of `global` split along dimension `dim` as torch.tensor_split does:
/// the first (size % count) parts one longer. Throws mismatch_error for a bad dim or index.
inline Box split_box(const Shape& global, std::size_t dim, std::int64_t index, std::int64_t count) {
  if (dim >= global.size()) throw mismatch_error("cannot split along a dimension the tensor lacks", "", "a dimension below " + std::to_string(global.size()), std::to_string(dim));
  if (count <= 0 || index < 0 || index >= count) throw mismatch_error("split part out of range", "", "0 <= index < count", std::to_string(index) + " of " + std::to_string(count));
  Box b{Shape(global.size(), 0), global};
  const auto n = global[dim], base = n / count, extra = n % count;
  b.offsets[dim] = index * base + std::min(index, extra);
  b.shape[dim] = base + (index < extra ? 1 : 0);
  return b;
}

}  // namespace ckpt::dist
