// Run under mpirun by the dist.mpi.* tests: saves and resharding loads of the states of
// tests/support/dist_cases.hpp across real processes.
//   matrix-save BASE   for N = 1..size: the first N ranks save layout 0 into BASE/n<N>
//   matrix-load BASE   for N = 1..size and M = 1..size: the first M ranks load BASE/n<N> in
//                      layout 1 and check every value bit for bit (a separate run from the save)
//   save DIR / load DIR   the same with the whole world (N = size of that run); the load also
//                      takes its slices of a single-file checkpoint of the global state
//   fault DIR          rank 1 fails during its write: every rank gets rank 1's error, nothing new
//                      is visible, the previous checkpoint is intact; then the coordinator's
//                      commit fails, then a plan error (a gap)
//   manager DIR        a dist::CheckpointManager saves steps 1..3 keeping 2; every byte of one
//                      rank's file of step 3 is changed; a new manager restores into another
//                      chunking: every rank falls back to step 2 together, which is marked
//                      corrupt in the index, and the state is step 2's bit for bit
// Prints one summary line on rank 0; the exit status is non-zero when any rank found a problem.
#include <mpi.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include <ckpt/dist/mpi.hpp>

#include "dist_cases.hpp"

namespace fs = std::filesystem;
namespace cases = ckpt_test::dist;
using ckpt::StateDict;
using ckpt::dist::MpiComm;

namespace {
int world_rank = 0, world_size = 1;
int problems = 0;

void problem(const std::string& what) {
  std::cerr << "rank " << world_rank << ": " << what << "\n";
  ++problems;
}

/// The first n ranks of the world as a communicator; MPI_COMM_NULL on the others.
MPI_Comm first_ranks(int n) {
  MPI_Comm sub;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank < n ? 0 : MPI_UNDEFINED, world_rank, &sub);
  return sub;
}

void save_with(MPI_Comm c, const fs::path& dir) {
  MpiComm comm(c);
  ckpt::dist::save(comm, dir, cases::state(0, {comm.rank()}, comm.size()), {.fsync = false, .crc_block_bytes = 16});
}

void load_and_check(MPI_Comm c, const fs::path& dir, const std::string& label) {
  MpiComm comm(c);
  const auto got = ckpt::dist::load_state(comm, dir, cases::state(1, {comm.rank()}, comm.size(), true));
  if (auto bad = cases::check_loaded(got, 1, {comm.rank()}, comm.size()); !bad.empty()) problem(label + ": " + bad);
}

bool has_temporary(const fs::path& parent) {
  for (const auto& e : fs::directory_iterator(parent))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

void fault(const fs::path& dir) {
  MpiComm comm;
  const auto before = cases::state(0, {comm.rank()}, comm.size());
  ckpt::dist::save(comm, dir, before);
  // Rank 1 cannot write its data file.
  if (comm.rank() == 1)
    ckpt::io::write_fault_hook() = [](const std::string& p, std::uint64_t, std::size_t) { return p.find("rank-00001.bin") != std::string::npos ? EIO : 0; };
  StateDict after = cases::state(0, {comm.rank()}, comm.size());
  after["step"] = 43;
  try {
    ckpt::dist::save(comm, dir, after);
    problem("the save with a failing rank succeeded");
  } catch (const ckpt::io_error& e) {
    if (comm.rank() != 1) problem(std::string("io_error on a rank that did not fail: ") + e.what());
    if (std::string(e.what()).find("rank-00001.bin") == std::string::npos) problem(std::string("io_error without the file: ") + e.what());
  } catch (const ckpt::dist::rank_error& e) {
    if (comm.rank() == 1 || e.rank() != 1) problem(std::string("wrong rank_error: ") + e.what());
    if (std::string(e.what()).find("rank 1 failed: cannot write") == std::string::npos || std::string(e.what()).find("Input/output error") == std::string::npos)
      problem(std::string("rank_error without rank 1's message: ") + e.what());
  }
  ckpt::io::write_fault_hook() = nullptr;
  comm.barrier();
  if (has_temporary(dir.parent_path())) problem("a temporary is left");
  if (auto bad = cases::check_global(ckpt::dist::load_global(dir)); !bad.empty()) problem("previous checkpoint damaged: " + bad);

  // The coordinator cannot publish the directory (its rename or exchange fails): every rank
  // gets rank 0's error, the previous checkpoint stays.
  if (comm.rank() == 0)
    ckpt::io::sync_fault_hook() = [](ckpt::io::SyncStep s, const std::string&) {
      return s == ckpt::io::SyncStep::rename || s == ckpt::io::SyncStep::exchange ? ENOSPC : 0;
    };
  try {
    ckpt::dist::save(comm, dir, after);
    problem("the save with a failing commit succeeded");
  } catch (const ckpt::error& e) {
    const std::string m = e.what();
    if (m.find("No space left on device") == std::string::npos || (comm.rank() != 0 && m.find("rank 0 failed") == std::string::npos))
      problem("commit error without rank 0's message: " + m);
  }
  ckpt::io::sync_fault_hook() = nullptr;
  comm.barrier();
  if (has_temporary(dir.parent_path())) problem("a temporary is left after a failed commit");
  if (ckpt::dist::load_global(dir).at("step").value() != 42) problem("previous checkpoint replaced by a failed commit");

  // A plan error: the last rank leaves out its rows of "w".
  StateDict gap = cases::state(0, {comm.rank()}, comm.size());
  if (comm.rank() == comm.size() - 1) gap["w"] = ckpt::dist::ShardedTensor(ckpt::DType::f32, {7, 5}).state_dict();
  try {
    ckpt::dist::save(comm, dir, gap);
    problem("a save with a gap succeeded");
  } catch (const ckpt::error& e) {
    const std::string m = e.what();
    if (m.find("at 'w'") == std::string::npos || m.find("are in no chunk") == std::string::npos) problem("gap error without key or gap: " + m);
    if (comm.rank() != 0 && m.find("rank 0 failed") == std::string::npos) problem("gap error not from the coordinator: " + m);
  }
  if (ckpt::dist::load_global(dir).at("step").value() != 42) problem("previous checkpoint replaced");
}
/// A Checkpointable over a StateDict: saves it, and takes what a load gives back.
struct Holder {
  StateDict sd;
  StateDict state_dict() const { return sd; }
  ckpt::LoadReport load_state_dict(const StateDict& got, const ckpt::LoadOptions& = {}) {
    sd = got;
    return {};
  }
};

void manager(const fs::path& dir) {
  MpiComm comm;
  ckpt::dist::ManagerOptions o;
  o.max_to_keep = 2;
  o.save_options.fsync = false;
  {
    Holder h{cases::state(0, {comm.rank()}, comm.size())};
    ckpt::dist::CheckpointManager mgr(comm, dir, h, o);
    if (mgr.restore_or_initialize()) problem("restored from an empty directory");
    for (int step = 1; step <= 3; ++step) {
      h.sd["step"] = step;
      mgr.save(step);
    }
    if (mgr.checkpoints().size() != 2 || mgr.checkpoints()[0].step != 2 || mgr.latest_step() != 3) problem("retention did not keep steps 2 and 3");
  }
  comm.barrier();
  if (comm.rank() == 0) {
    if (fs::exists(dir / "ckpt-1")) problem("step 1 was not deleted");
    const auto data = dir / "ckpt-3" / "rank-00001.bin";
    auto bytes = ckpt_test::read_bytes(data);
    for (auto& b : bytes) b = static_cast<char>(b ^ 0x5a);
    ckpt_test::write_bytes(data, bytes);
  }
  comm.barrier();
  int failures = 0;
  bool marked = false;
  o.on_verify_failure = [&](const ckpt::VerifyFailure& f) {
    ++failures;
    marked = f.marked_corrupt && f.step == 3;
  };
  Holder r{cases::state(1, {comm.rank()}, comm.size(), true)};
  ckpt::dist::CheckpointManager mgr(comm, dir, r, o);
  const auto step = mgr.restore_or_initialize();
  if (step != 2) problem("restored step " + (step ? std::to_string(*step) : std::string("none")) + ", not 2");
  if (failures != 1 || !marked) problem("the damaged step 3 was not reported once as corrupt on this rank");
  if (r.sd.at("step").value() != 2) problem("the state's step is not 2");
  if (mgr.latest_step() != 2) problem("latest_step is not 2 after the fall-back");
  r.sd["step"] = 42;  // what check_loaded expects of the other values
  if (auto bad = cases::check_loaded(r.sd, 1, {comm.rank()}, comm.size()); !bad.empty()) problem("step 2 resharded: " + bad);
  if (comm.rank() == 0) {
    const auto ix = ckpt::ManagerIndex::read(dir);
    if (ix.entries.size() != 2 || !ix.entries[1].corrupt || ix.entries[0].corrupt) problem("the index does not mark step 3 (only) corrupt");
  }
}
}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  const std::string mode = argc > 2 ? argv[1] : "";
  const fs::path path = argc > 2 ? fs::absolute(argv[2]) : fs::path();
  std::string summary;
  try {
    if (mode == "matrix-save" || mode == "save") {
      if (world_rank == 0) {
        fs::remove_all(path);
        fs::create_directories(path);
      }
      MPI_Barrier(MPI_COMM_WORLD);
    }
    if (mode == "matrix-save") {
      for (int n = 1; n <= world_size; ++n) {
        if (MPI_Comm c = first_ranks(n); c != MPI_COMM_NULL) {
          save_with(c, path / ("n" + std::to_string(n)));
          MPI_Comm_free(&c);
        }
      }
      summary = "dist matrix saved with N = 1.." + std::to_string(world_size);
    } else if (mode == "matrix-load") {
      int combos = 0;
      for (int n = 1; n <= world_size; ++n)
        for (int m = 1; m <= world_size; ++m, ++combos)
          if (MPI_Comm c = first_ranks(m); c != MPI_COMM_NULL) {
            load_and_check(c, path / ("n" + std::to_string(n)), "N=" + std::to_string(n) + " M=" + std::to_string(m));
            MPI_Comm_free(&c);
          }
      summary = "dist matrix loaded " + std::to_string(combos) + " (N, M) pairs";
    } else if (mode == "save") {
      save_with(MPI_COMM_WORLD, path / "ck");
      if (world_rank == 0) ckpt::save(path / "single.ckpt", cases::global_state());  // for a load onto N ranks
      summary = "dist saved on " + std::to_string(world_size) + " ranks";
    } else if (mode == "load") {
      load_and_check(MPI_COMM_WORLD, path / "ck", "M=" + std::to_string(world_size));
      load_and_check(MPI_COMM_WORLD, path / "single.ckpt", "single file onto M=" + std::to_string(world_size));
      if (world_rank == 0)
        if (auto bad = cases::check_global(ckpt::dist::load_global(path / "ck")); !bad.empty()) problem("load_global: " + bad);
      summary = "dist loaded on " + std::to_string(world_size) + " ranks";
    } else if (mode == "fault") {
      if (world_rank == 0) {
        fs::remove_all(path);
        fs::create_directories(path);
      }
      MPI_Barrier(MPI_COMM_WORLD);
      if (world_size < 2) problem("fault needs 2 ranks or more");
      else fault(path / "ck");
      summary = "dist faults on " + std::to_string(world_size) + " ranks";
    } else if (mode == "manager") {
      if (world_rank == 0) fs::remove_all(path);
      MPI_Barrier(MPI_COMM_WORLD);
      manager(path);
      summary = "dist manager on " + std::to_string(world_size) + " ranks";
    } else {
      problem("usage: dist_mpi_tool matrix-save|matrix-load|save|load|fault|manager DIR");
    }
  } catch (const std::exception& e) {
    problem(std::string("exception: ") + e.what());
  }
  int total = 0;
  MPI_Allreduce(&problems, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (world_rank == 0) std::cout << summary << (total ? ": " + std::to_string(total) + " problems" : std::string(": ok")) << std::endl;
  MPI_Finalize();
  return total ? 1 : 0;
}
