// ckpt/dist/comm.hpp — what the distributed save and load need from a communication engine, as
// a concept: rank and size, a barrier, broadcast / gather / scatter / allgather of bytes, an all-reduce
// of a status that tells every rank which rank failed first and why. `SingleProcess` is the
// one-rank implementation (no MPI); dist/mpi.hpp implements it over an MPI_Comm, and a user with
// another engine (torch's c10d/gloo, NCCL's host side) writes a small class of the same shape.
// Also `rank_error` and `collective_step`, the pattern every phase of a save or load follows.
#pragma once

#include <concepts>   // std::same_as
#include <cstddef>    // std::byte
#include <exception>  // std::exception_ptr
#include <span>       // input bytes
#include <string>     // messages
#include <string_view>  // stripping the "ckpt: " prefix
#include <utility>    // std::move
#include <vector>     // byte buffers

#include "../error.hpp"  // ckpt::error

namespace ckpt::dist {

using Bytes = std::vector<std::byte>;

/// The outcome of one phase on one rank, or (after all_reduce_status) on all of them: `rank` is
/// the failing rank (the lowest one, when several failed) and `message` its error; -1 when none.
struct Status {
  int rank = -1;
  std::string message;
  bool ok() const noexcept { return rank < 0; }
};

/// A communicator over `size()` ranks numbered 0..size()-1. Every member is collective — all
/// ranks call it, in the same order — except rank() and size().
///  - broadcast(buf, root): every rank's buf becomes root's (any size);
///  - gather(bytes, root): root gets every rank's bytes, by rank; the others an empty vector;
///  - scatter(parts, root): root passes size() messages, the others none; rank i gets parts[i];
///  - allgather(bytes): every rank gets every rank's bytes, by rank;
///  - all_reduce_status(mine): every rank gets the lowest failing rank's Status (ok if none).
template <class C>
concept Communicator = requires(C& c, const C& cc, Bytes& buf, std::span<const std::byte> in, const std::vector<Bytes>& parts, int root, const Status& st) {
  { cc.rank() } -> std::same_as<int>;
  { cc.size() } -> std::same_as<int>;
  c.barrier();
  c.broadcast(buf, root);
  { c.gather(in, root) } -> std::same_as<std::vector<Bytes>>;
  { c.scatter(parts, root) } -> std::same_as<Bytes>;
  { c.allgather(in) } -> std::same_as<std::vector<Bytes>>;
  { c.all_reduce_status(st) } -> std::same_as<Status>;
};

/// The communicator of a process that is the only rank: no MPI, every collective trivial. For
/// saving or loading a distributed checkpoint from one process.
class SingleProcess {
 public:
  int rank() const { return 0; }
  int size() const { return 1; }
  void barrier() {}
  void broadcast(Bytes&, int) {}
  std::vector<Bytes> gather(std::span<const std::byte> in, int) { return {Bytes(in.begin(), in.end())}; }
  Bytes scatter(const std::vector<Bytes>& parts, int) { return parts.at(0); }
  std::vector<Bytes> allgather(std::span<const std::byte> in) { return {Bytes(in.begin(), in.end())}; }
  Status all_reduce_status(const Status& s) { return s; }
};
static_assert(Communicator<SingleProcess>);

/// Thrown on every rank but the failing one when a collective save or load fails on another
/// rank: carries that rank's number and its error message.
class rank_error : public error {
 public:
  /// "ckpt: rank 1 failed: <its message without "ckpt: ">", naming `path` unless the message does.
  rank_error(int rank, const std::string& message, const std::string& path)
      : error(raw_message{}, "ckpt: rank " + std::to_string(rank) + " failed: " + strip(message) +
                                 (path.empty() || message.find("'" + path + "'") != std::string::npos ? "" : " in '" + path + "'"),
              path),
        rank_(rank) {}
  /// The rank that failed.
  int rank() const noexcept { return rank_; }

 private:
  static std::string strip(const std::string& m) {
    constexpr std::string_view prefix = "ckpt: ";
    return m.compare(0, prefix.size(), prefix) == 0 ? m.substr(prefix.size()) : m;
  }
  int rank_;
};

/// Bytes of a string, and back (what the collectives carry).
inline Bytes to_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return Bytes(p, p + s.size());
}
inline std::string to_string(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

/// One phase of a collective operation: run `local` on this rank, then all-reduce the outcome.
/// When any rank failed, every rank throws: the failing rank its own exception, the others a
/// rank_error with its rank and message (the lowest failing rank's, when several failed).
/// `path` names the checkpoint in rank_error.
template <Communicator C, class F>
void collective_step(C& comm, const std::string& path, F&& local) {
  std::exception_ptr mine;
  Status st;
  try {
    local();
  } catch (const std::exception& e) {
    mine = std::current_exception();
    st = {comm.rank(), e.what()};
  } catch (...) {
    mine = std::current_exception();
    st = {comm.rank(), "unknown exception"};
  }
  const Status all = comm.all_reduce_status(st);
  if (all.ok()) return;
  if (all.rank == comm.rank() && mine) std::rethrow_exception(mine);
  throw rank_error(all.rank, all.message, path);
}

}  // namespace ckpt::dist
