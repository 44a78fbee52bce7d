// ckpt/dist/load.hpp — loading a distributed checkpoint (docs/DISTRIBUTED.md) on any number of
// ranks, in any chunking. `ChunkReader` fills a requested box of a saved tensor from the saved
// chunks that intersect it: for each, the row-major runs of the intersection, the CRC blocks
// holding them (adjacent ones read together, with positioned reads), each block verified, the
// runs copied into place — nothing else of the file is read. `load(comm, dir, object)` asks for
// what the object holds now (its state_dict(): a ShardedTensor's own chunks, a plain tensor
// whole, values) and loads it into the object; `load_state` returns the StateDict instead;
// `load_global(dir)` (no communicator) returns the whole checkpoint with global tensors. Both
// also take a single-file checkpoint of any format, each rank taking its slices of it.
#pragma once

#include <algorithm>   // std::min, std::max
#include <cstddef>     // std::byte
#include <cstdint>     // offsets
#include <cstring>     // std::memcpy
#include <filesystem>  // paths
#include <functional>  // opening data files
#include <optional>    // lazily opened files
#include <string>      // keys
#include <unordered_map>  // leaf path -> tensor index
#include <utility>     // std::move
#include <vector>      // runs, buffers

#include "../concepts.hpp"         // Checkpointable, load_state_dict, rethrow_with_prefix
#include "../detail/crc32.hpp"     // crc32, crc_hex, enforce_checksums
#include "../detail/skeleton.hpp"  // build_from_skeleton
#include "../io/file.hpp"          // read_file
#include "../io/source.hpp"        // Source: a data file, or bytes in memory
#include "../save_load.hpp"        // ckpt::load: a single-file checkpoint loaded onto N ranks
#include "comm.hpp"                // Communicator, collective_step
#include "metadata.hpp"            // Metadata, parse_metadata
#include "plan.hpp"                // describe: a single file's tensors as chunks
#include "sharded.hpp"             // ShardedTensor

namespace ckpt::dist {

/// What the reads of a load did on this rank (for tests and benchmarks).
struct LoadStats {
  std::uint64_t bytes_read = 0;  ///< bytes read from data files
  std::size_t reads = 0;         ///< positioned reads issued
};

/// Reads boxes of saved tensors out of a checkpoint directory's data files.
class ChunkReader {
 public:
  /// Adjacent blocks of different runs are read together up to this many bytes at once.
  static constexpr std::uint64_t max_merged_read = std::uint64_t{64} << 20;

  /// Opens data file i (meta.files[i]) as a Source: a file, or bytes in memory.
  using Opener = std::function<io::Source(std::size_t)>;

  /// Reads the data files of the checkpoint directory `dir`.
  ChunkReader(const std::filesystem::path& dir, const Metadata& meta, bool verify)
      : ChunkReader(meta, verify, [dir, &meta](std::size_t i) { return io::Source::file(dir / meta.files[i].name); }) {}
  /// Reads data files that `open` provides (a test or a fuzzer: bytes in memory).
  ChunkReader(const Metadata& meta, bool verify, Opener open)
      : meta_(meta), verify_(verify), open_(std::move(open)), files_(meta.files.size()) {}

  /// Fill `dst`, the row-major bytes of box `want` of tensor `t`, from the saved chunks that
  /// intersect it. (The saved chunks tile the tensor: parse_metadata checked.)
  void read(const SavedTensor& t, const Box& want, std::byte* dst) {
    const std::uint64_t es = element_size(t.dtype), block = meta_.crc_block_bytes;
    struct Run { std::uint64_t src, dst, n; };
    std::vector<Run> runs;
    std::vector<std::byte> buf;
    for (const auto& s : t.chunks) {
      const auto part = intersect(s.box, want);
      if (!part) continue;
      runs.clear();
      for_each_run(*part, s.box, want, [&](std::int64_t a, std::int64_t b, std::int64_t n) {
        runs.push_back({static_cast<std::uint64_t>(a) * es, static_cast<std::uint64_t>(b) * es, static_cast<std::uint64_t>(n) * es});
      });
      if (runs.size() == 1 && runs[0].src == 0 && runs[0].n == s.nbytes) {  // the whole chunk, contiguous in dst
        read_blocks(t, s, 0, s.nbytes, dst + runs[0].dst);
        continue;
      }
      for (std::size_t i = 0; i < runs.size();) {
        const std::uint64_t b0 = runs[i].src / block;
        std::uint64_t b1 = (runs[i].src + runs[i].n - 1) / block;
        std::size_t j = i + 1;
        while (j < runs.size() && runs[j].src / block <= b1 + 1 && (b1 - b0 + 1) * block < max_merged_read) {
          b1 = std::max(b1, (runs[j].src + runs[j].n - 1) / block);
          ++j;
        }
        const std::uint64_t lo = b0 * block, hi = std::min((b1 + 1) * block, s.nbytes);
        buf.resize(static_cast<std::size_t>(hi - lo));
        read_blocks(t, s, lo, hi, buf.data());
        for (; i < j; ++i) std::memcpy(dst + runs[i].dst, buf.data() + (runs[i].src - lo), static_cast<std::size_t>(runs[i].n));
      }
    }
  }
  /// The whole tensor `t`, read.
  Tensor read_all(const SavedTensor& t) {
    Tensor out = Tensor::empty(t.dtype, t.shape);
    read(t, Box{Shape(t.shape.size(), 0), t.shape}, out.mutable_data());
    return out;
  }
  /// Read and verify every block of chunk `s` of tensor `t`, in pieces of at most
  /// max_merged_read bytes (bounded memory); corrupt_error names the first bad block.
  void verify_chunk(const SavedTensor& t, const SavedChunk& s) {
    const std::uint64_t piece = std::max<std::uint64_t>(max_merged_read / meta_.crc_block_bytes, 1) * meta_.crc_block_bytes;
    std::vector<std::byte> buf;
    for (std::uint64_t at = 0; at < s.nbytes; at += piece) {
      const std::uint64_t hi = std::min(s.nbytes, at + piece);
      buf.resize(static_cast<std::size_t>(hi - at));
      read_blocks(t, s, at, hi, buf.data());
    }
  }
  const LoadStats& stats() const noexcept { return stats_; }

 private:
  /// Read bytes [lo, hi) of chunk `s` (lo on a block boundary, hi on one or the chunk's end) into
  /// `out` and verify each block's CRC-32.
  void read_blocks(const SavedTensor& t, const SavedChunk& s, std::uint64_t lo, std::uint64_t hi, std::byte* out) {
    if (hi == lo) return;
    const io::Source& f = file(s.file);
    f.pread_all({out, static_cast<std::size_t>(hi - lo)}, s.offset + lo);
    stats_.bytes_read += hi - lo;
    ++stats_.reads;
    if (!verify_) return;
    const std::uint64_t block = meta_.crc_block_bytes;
    for (std::uint64_t at = lo; at < hi; at += block) {
      const auto n = static_cast<std::size_t>(std::min(block, hi - at));
      const std::uint32_t got = ckpt::detail::crc32({out + (at - lo), n}), want = s.crc32[at / block];
      if (got != want && ckpt::detail::enforce_checksums)
        throw corrupt_error("checksum mismatch in chunk " + box_string(s.box) + " at bytes " + std::to_string(s.offset + at) + "+" + std::to_string(n),
                            f.path(), t.key, ckpt::detail::crc_hex(want), ckpt::detail::crc_hex(got));
    }
  }
  const io::Source& file(std::size_t i) {
    if (!files_[i]) {
      io::Source f = open_(i);
      if (f.size() < meta_.files[i].size)
        throw format_error("data file shorter than the metadata says", f.path(), format_error::no_offset, {}, std::to_string(meta_.files[i].size) + " bytes", std::to_string(f.size()) + " bytes");
      files_[i].emplace(std::move(f));
    }
    return *files_[i];
  }

  const Metadata& meta_;
  bool verify_;
  Opener open_;
  std::vector<std::optional<io::Source>> files_;
  LoadStats stats_;
};

/// Read and check `dir`'s metadata.json on this process.
inline Metadata read_metadata(const std::filesystem::path& dir, const LoadOptions& opts = {}) {
  const auto p = dir / metadata_name;
  const auto bytes = io::read_file(p);
  return parse_metadata(to_string(bytes), p.string(), opts.strict);
}

namespace detail_load {
/// The saved tree with placeholder tensors, and each tensor leaf's index in meta.tensors.
struct SavedTree {
  StateDict tree;
  std::unordered_map<std::string, std::size_t> index;  // escaped leaf path -> tensor
};
inline SavedTree saved_tree(const Metadata& m, const std::string& file) {
  SavedTree s;
  s.tree = ckpt::detail::build_from_skeleton(m.tree, [&](std::size_t i, const KeyPath& p) { s.index[p.str()] = i; return Tensor(); }, m.tensors.size(), file);
  return s;
}

/// Fill `req` (what this rank asks for) from the checkpoint; leaves of the checkpoint the request
/// does not name go to `unexpected`, requested keys it lacks are left out.
struct Filler {
  const Metadata& meta;
  const SavedTree& saved;
  ChunkReader& reader;
  std::string file;
  bool skip_mismatched = false;
  std::vector<std::string> unexpected;

  StateDict fill(const StateDict& req, const StateDict& have, const KeyPath& p) {
    const auto it = have.is_tensor() ? saved.index.find(p.str()) : saved.index.end();
    if (ShardedTensor::is_marker(req)) {
      if (it == saved.index.end()) return have;  // not a tensor there: the object's load says so
      ShardedTensor want;
      try {
        want = ShardedTensor::from_state_dict(req);
      } catch (const mismatch_error& e) {
        rethrow_with_prefix(e, p);
      }
      const SavedTensor& st = meta.tensors[it->second];
      if (want.dtype() != st.dtype || want.global_shape() != st.shape) {
        // The saved tensor without chunks: the object's load raises or (skip_mismatched) reports it.
        if (skip_mismatched) return ShardedTensor(st.dtype, st.shape).state_dict();
        if (want.dtype() != st.dtype) throw mismatch_error("dtype mismatch", p.str(), std::string(name(want.dtype())), std::string(name(st.dtype)), file);
        throw mismatch_error("global shape mismatch", p.str(), shape_string(want.global_shape()), shape_string(st.shape), file);
      }
      ShardedTensor got(st.dtype, st.shape);
      for (const auto& c : want.chunks()) {
        Tensor t = Tensor::empty(st.dtype, c.data.shape());
        reader.read(st, c.box(), t.mutable_data());
        got.add_chunk({c.offsets, std::move(t)});
      }
      return got.state_dict();
    }
    if (req.is_tensor() && it != saved.index.end()) return reader.read_all(meta.tensors[it->second]);
    if (!req.is_dict() || !have.is_dict()) return have;
    StateDict out = StateDict::dict(have.container());
    for (const auto& child : have.items()) {
      if (const StateDict* r = req.find_key(child.key)) {
        out.set(child.key, fill(*r, child.value, p / child.key));
        continue;
      }
      for (const auto& [lp, leaf] : child.value.flatten()) unexpected.push_back((p / child.key / lp).str());
      if (child.value.is_dict() && child.value.empty()) unexpected.push_back((p / child.key).str());
    }
    return out;
  }
};

/// A single-file checkpoint (any format ckpt::load reads) as a Metadata whose data files are
/// its tensors in memory (one chunk each; a ShardedTensor node saved in it keeps its chunks), so
/// that a request is filled from it exactly as from a distributed checkpoint.
struct SingleFile {
  LocalState state;
  Metadata meta;
  std::vector<const Tensor*> data;  // meta.files[i]'s bytes

  SingleFile(const std::filesystem::path& path, const LoadOptions& opts) : state(describe(ckpt::load(path, opts))) {
    meta.tree = state.tree;
    for (const auto& t : state.tensors) {
      SavedTensor st{t.key, t.dtype, t.shape, {}};
      std::vector<Box> boxes;
      for (const auto& c : t.chunks) {
        st.chunks.push_back({c.box(), meta.files.size(), 0, c.data.nbytes(), {}});
        meta.files.push_back({t.key, c.data.nbytes()});
        data.push_back(&c.data);
        boxes.push_back(c.box());
      }
      if (auto why = tiling_problem(t.shape, boxes)) throw format_error("the chunks of a sharded tensor do not tile it: " + *why, path.string(), format_error::no_offset, t.key);
      meta.tensors.push_back(std::move(st));
    }
  }
  SingleFile(const SingleFile&) = delete;  // data points into state
  SingleFile& operator=(const SingleFile&) = delete;
};

template <Communicator C, class Use>
void load_request(C& comm, const std::filesystem::path& dir, const StateDict& request, const LoadOptions& opts, LoadStats* stats, Use&& use) {
  // The coordinator tells a distributed checkpoint (its metadata follows 'D') from a single file
  // ('F'), and reads the metadata once for all ranks.
  const std::string path = dir.string(), meta_path = (dir / metadata_name).string();
  Bytes text;
  collective_step(comm, path, [&] {
    if (comm.rank() != 0) return;
    if (std::filesystem::is_regular_file(dir)) {
      text = to_bytes("F");
    } else {
      text = to_bytes("D");
      const auto m = io::read_file(dir / metadata_name);
      text.insert(text.end(), m.begin(), m.end());
    }
  });
  comm.broadcast(text, 0);
  collective_step(comm, path, [&] {
    auto run = [&](const Metadata& meta, ChunkReader& reader, const std::string& file) {
      const SavedTree saved = saved_tree(meta, file);
      Filler f{meta, saved, reader, path, opts.skip_mismatched, {}};
      StateDict got = f.fill(request, saved.tree, {});
      if (stats) *stats = reader.stats();
      use(got, f.unexpected);
    };
    if (to_string(text).starts_with("F")) {  // every rank loads the file and takes its slices
      const SingleFile one(dir, opts);
      ChunkReader reader(one.meta, false, [&](std::size_t i) { return io::Source::borrowed(one.data[i]->bytes(), path); });
      return run(one.meta, reader, path);
    }
    const Metadata meta = parse_metadata(to_string(std::span(text).subspan(1)), meta_path, opts.strict);
    ChunkReader reader(dir, meta, opts.verify_checksums());
    run(meta, reader, meta_path);
  });
}
}  // namespace detail_load

/// Load, on every rank of `comm` (collectively), what `request` asks for: for a ShardedTensor
/// node, its chunks (offsets and shapes as in the request, any chunking); for a tensor, the whole
/// global tensor; for a value, the value. Keys the checkpoint lacks are left out. Failures throw
/// on every rank (collective_step). `stats`, when given, receives this rank's read counts.
/// `dir` may also be a single-file checkpoint of any format (ckpt::save's): each rank then loads
/// the file (as `opts` say: LoadOptions::mmap maps it) and takes its slices of it.
template <Communicator C>
StateDict load_state(C& comm, const std::filesystem::path& dir, const StateDict& request, const LoadOptions& opts = {}, LoadStats* stats = nullptr) {
  StateDict out;
  detail_load::load_request(comm, dir, request, opts, stats, [&](StateDict& got, std::vector<std::string>&) { out = std::move(got); });
  return out;
}

/// Load into `object` what its state_dict() holds now (a resharding load: its ShardedTensors'
/// chunks may differ from the saved ones, and the number of ranks too). As ckpt::load_into:
/// strict (default) raises key_error for missing or unexpected keys, a mismatch raises
/// mismatch_error naming the key; here on every rank when it happens on one.
template <Communicator C, Checkpointable T>
LoadReport load(C& comm, const std::filesystem::path& dir, T& object, const LoadOptions& opts = {}) {
  LoadReport report;
  StateDict request;
  collective_step(comm, dir.string(), [&] { request = to_state_dict(object); });  // a throwing state_dict() fails every rank
  detail_load::load_request(comm, dir, request, opts, nullptr, [&](const StateDict& got, const std::vector<std::string>& unexpected) {
    try {
      report = load_state_dict(object, got, opts);
    } catch (const mismatch_error& e) {
      throw mismatch_error(e.reason(), e.key(), e.expected(), e.got(), dir.string());
    }
    report.unexpected.insert(report.unexpected.end(), unexpected.begin(), unexpected.end());
    if (opts.strict && (!report.missing.empty() || !report.unexpected.empty()))
      throw key_error("state dict does not match the object (" + report.summary() + ")", dir.string());
  });
  return report;
}

/// Check a distributed checkpoint on this process: its metadata (as every load does), its tree,
/// and the CRC-32 of every block of every chunk, read in bounded memory. Throws format_error for
/// structural damage, corrupt_error naming the data file and key of the first bad block.
inline void verify(const std::filesystem::path& dir) {
  const Metadata meta = read_metadata(dir);
  (void)detail_load::saved_tree(meta, (dir / metadata_name).string());
  ChunkReader reader(dir, meta, true);
  for (const auto& t : meta.tensors)
    for (const auto& c : t.chunks) reader.verify_chunk(t, c);
}

/// The whole distributed checkpoint at `dir` as one StateDict of global tensors, read by this
/// process alone (no communicator): a single-process load, or a converter's input.
inline StateDict load_global(const std::filesystem::path& dir, const LoadOptions& opts = {}) {
  const Metadata meta = read_metadata(dir, opts);
  ChunkReader reader(dir, meta, opts.verify_checksums());
  return ckpt::detail::build_from_skeleton(meta.tree, [&](std::size_t i, const KeyPath&) { return reader.read_all(meta.tensors[i]); }, meta.tensors.size(), (dir / metadata_name).string());
}

}  // namespace ckpt::dist
