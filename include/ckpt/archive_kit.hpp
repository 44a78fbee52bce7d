// ckpt/archive_kit.hpp — the public pieces a user-written archive backend (archive_traits) builds
// on, as the built-in ones do: the tree-shape JSON that makes a StateDict round-trip exactly
// (SkeletonBuilder while writing, build_from_skeleton while reading) and a JSON parser bounded
// for hostile files (depth, size; errors name the file and the byte offset). examples/rawdir.hpp
// uses them. The implementations stay in detail/; these names are the supported contract.
#pragma once

#include "detail/skeleton.hpp"

namespace ckpt {
using detail::build_from_skeleton;
using detail::max_tree_depth;
using detail::parse_json_limited;
using detail::SkeletonBuilder;
}  // namespace ckpt
