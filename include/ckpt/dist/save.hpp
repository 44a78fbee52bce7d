// ckpt/dist/save.hpp — `ckpt::dist::save(comm, dir, state)`: every rank of `comm` saves its state
// (sharded tensors, replicated tensors, JSON values) into one checkpoint directory. Phases
// (docs/DISTRIBUTED.md): describe and gather; plan at the coordinator (rank 0) and broadcast;
// each rank writes its own data file with a CRC-32 per block and fsyncs it; only when every
// rank succeeded does the coordinator write metadata.json and publish the directory atomically
// (io::AtomicDir). Every phase ends with an all-reduce of the outcome (collective_step): a
// failure on any rank aborts the save on all of them with that rank's error, nothing new is
// visible and a previous checkpoint at `dir` is untouched.
#pragma once

#include <algorithm>   // std::min
#include <cstdint>     // byte counts
#include <filesystem>  // paths
#include <optional>    // the coordinator's temporary directory
#include <span>        // chunk bytes
#include <string>      // paths
#include <vector>      // CRCs

#include "../concepts.hpp"      // Checkpointable, to_state_dict
#include "../detail/crc32.hpp"  // crc32 of each block
#include "../io/file.hpp"       // File, FileWriter, AtomicDir
#include "comm.hpp"             // Communicator, collective_step
#include "plan.hpp"             // describe, make_plan

namespace ckpt::dist {

/// Options of a distributed save.
struct SaveOptions {
  /// fsync each data file, the metadata and the directories (off: faster, not crash-safe).
  bool fsync = true;
  /// Chunk bytes are checksummed in blocks of this size; a load reads whole blocks of what it
  /// needs. Smaller: less read beyond the bytes wanted; larger: fewer CRCs in the metadata.
  std::uint64_t crc_block_bytes = std::uint64_t{1} << 20;
  /// Refuse a save whose replicated tensors differ between ranks (each rank sends their CRC-32 to
  /// the coordinator: one pass over their bytes). false: the copy of the rank that writes it is
  /// stored, unchecked.
  bool check_replicated = true;
};

namespace detail_save {
/// Rank `rank`'s part of the write phase: its chunks into its file in `tmp`, fsynced; returns
/// the CRC-32 of each block of each chunk, in write order.
inline Value write_rank_file(const std::filesystem::path& tmp, int rank, const LocalState& local, const Value& writes, std::uint64_t file_size, const SaveOptions& opts) {
  io::File f = io::File::create_exclusive(tmp / rank_file_name(rank));
  io::FileWriter w(f, std::size_t{1} << 20, opts.fsync ? io::writeback_bytes : 0);
  Value crcs = Value::array();
  for (const auto& wr : writes) {
    const Chunk& c = local.tensors.at(wr[0].get<std::size_t>()).chunks.at(wr[1].get<std::size_t>());
    w.pad_to(data_alignment);
    if (w.position() != wr[2].get<std::uint64_t>()) throw error("data file position differs from the plan", f.path(), local.tensors[wr[0].get<std::size_t>()].key, std::to_string(wr[2].get<std::uint64_t>()), std::to_string(w.position()));
    const auto bytes = c.data.bytes();
    Value blocks = Value::array();
    for (std::uint64_t at = 0; at < bytes.size(); at += opts.crc_block_bytes)
      blocks.push_back(ckpt::detail::crc32(bytes.subspan(at, std::min<std::uint64_t>(opts.crc_block_bytes, bytes.size() - at))));
    w.write(bytes);
    crcs.push_back(std::move(blocks));
  }
  if (w.position() != file_size) throw error("data file size differs from the plan", f.path(), {}, std::to_string(file_size), std::to_string(w.position()));
  w.flush();
  if (opts.fsync) f.fsync();
  f.close();
  return crcs;
}
}  // namespace detail_save

/// Save `state` — this rank's part — into the checkpoint directory `dir`, collectively: every
/// rank of `comm` calls it. Replicated tensors and JSON values must be equal on all ranks (the
/// coordinator's values are stored; each replicated tensor is written by one rank). `dir` must
/// be on a filesystem every rank sees, named by the same path on each. Throws on every rank when
/// any rank fails (see the top of the file).
template <Communicator C>
void save(C& comm, const std::filesystem::path& where, const StateDict& state, const SaveOptions& opts = {}) {
  // "run/ck/" names the directory "run/ck": its temporary is "run/ck.tmp-<random>", beside it.
  std::filesystem::path dir = where.lexically_normal();
  if (!dir.has_filename() && dir.has_parent_path()) dir = dir.parent_path();
  const std::string path = dir.string();
  const bool coordinator = comm.rank() == 0;
  LocalState local;
  Bytes mine;
  collective_step(comm, path, [&] {
    if (opts.crc_block_bytes == 0) throw unsupported_error("crc_block_bytes must be positive", path);
    local = describe(state);
    mine = pack(description(local, opts.check_replicated));
  });
  const std::vector<Bytes> described = comm.gather(mine, 0);

  Plan plan;
  std::optional<io::AtomicDir> tmp;  // the coordinator's; removed unless committed
  std::vector<Bytes> rank_plans;  // the coordinator's: what each rank writes, one message each
  collective_step(comm, path, [&] {
    if (!coordinator) return;
    std::vector<Value> all;
    all.reserve(described.size());
    for (const auto& d : described) all.push_back(unpack(d));
    plan = make_plan(all, local.tree, opts.crc_block_bytes, path);
    tmp.emplace(dir, opts.fsync);
    for (std::size_t r = 0; r < plan.writes.size(); ++r) {
      Value list = Value::array();
      for (const auto& w : plan.writes[r]) list.push_back(Value::array({w.tensor, w.chunk, w.offset}));
      rank_plans.push_back(pack(Value{{"tmp", tmp->temp_path().filename().string()}, {"writes", std::move(list)}, {"size", plan.meta.files[r].size}}));
    }
  });
  const Bytes my_plan = comm.scatter(rank_plans, 0);  // no rank but the coordinator holds the whole plan

  Bytes crcs;
  collective_step(comm, path, [&] {
    const Value p = unpack(my_plan);
    const auto tmp_dir = dir.parent_path() / p["tmp"].get<std::string>();
    crcs = pack(detail_save::write_rank_file(tmp_dir, comm.rank(), local, p["writes"], p["size"].get<std::uint64_t>(), opts));
  });
  const std::vector<Bytes> all_crcs = comm.gather(crcs, 0);

  collective_step(comm, path, [&] {
    if (!coordinator) return;
    for (std::size_t r = 0; r < all_crcs.size(); ++r) {
      const Value list = unpack(all_crcs[r]);
      for (std::size_t i = 0; i < plan.where[r].size(); ++i) {
        const auto [t, c] = plan.where[r][i];
        plan.meta.tensors[t].chunks[c].crc32 = list[i].get<std::vector<std::uint32_t>>();
      }
    }
    const std::string text = to_json(plan.meta).dump() + "\n";
    tmp->write_file(std::string(metadata_name), std::as_bytes(std::span(text)));
    tmp->commit();
  });
}

/// Save any Checkpointable's state (its state_dict(), which may hold ShardedTensors).
template <Communicator C, Checkpointable T>
  requires(!std::is_same_v<T, StateDict>)
void save(C& comm, const std::filesystem::path& dir, const T& object, const SaveOptions& opts = {}) {
  StateDict state;
  collective_step(comm, dir.string(), [&] { state = to_state_dict(object); });  // a throwing state_dict() fails every rank
  save(comm, dir, state, opts);
}

}  // namespace ckpt::dist
