// ckpt/dist/mpi.hpp — `ckpt::dist::MpiComm`, the Communicator concept (dist/comm.hpp) over an
// MPI communicator. The only ckpt header that includes <mpi.h>: include it in programs that link
// MPI (CMake: find_package(MPI) and MPI::MPI_CXX or MPI::MPI_C). The caller initializes MPI
// (MPI_Init or MPI_Init_thread; ckpt calls MPI only from the thread that calls save/load, so
// MPI_THREAD_SINGLE or FUNNELED is enough) and destroys every MpiComm before MPI_Finalize.
#pragma once

#include <mpi.h>  // MPI_Comm and the collectives

#include <algorithm>  // std::min, std::copy
#include <climits>  // INT_MAX: MPI counts are int
#include <cstddef>  // std::byte
#include <cstdint>  // sizes on the wire
#include <span>     // input bytes
#include <string>   // messages
#include <utility>  // std::exchange
#include <vector>   // buffers

#include "../error.hpp"  // ckpt::error, unsupported_error
#include "comm.hpp"      // Communicator, Status, Bytes

namespace ckpt::dist {

/// A Communicator over a duplicate of `comm` (MPI_Comm_dup, collective), so that ckpt's messages
/// never mix with the application's; errors come back as ckpt::error (MPI_ERRORS_RETURN on the
/// duplicate) instead of aborting.
class MpiComm {
 public:
  explicit MpiComm(MPI_Comm comm = MPI_COMM_WORLD) {
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  MpiComm(MpiComm&& o) noexcept : comm_(std::exchange(o.comm_, MPI_COMM_NULL)), rank_(o.rank_), size_(o.size_) {}
  ~MpiComm() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm_);
  }

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// The duplicate communicator ckpt uses.
  MPI_Comm native() const { return comm_; }

  void barrier() { check(MPI_Barrier(comm_), "MPI_Barrier"); }

  void broadcast(Bytes& buf, int root) {
    std::uint64_t n = buf.size();
    check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, comm_), "MPI_Bcast");
    buf.resize(static_cast<std::size_t>(n));
    for (std::uint64_t at = 0; at < n;) {  // pieces of at most INT_MAX bytes
      const int k = static_cast<int>(std::min<std::uint64_t>(n - at, INT_MAX));
      check(MPI_Bcast(buf.data() + at, k, MPI_BYTE, root, comm_), "MPI_Bcast");
      at += static_cast<std::uint64_t>(k);
    }
  }

  std::vector<Bytes> gather(std::span<const std::byte> in, int root) {
    const int n = count(in.size());
    std::vector<int> counts(rank_ == root ? static_cast<std::size_t>(size_) : 0);
    check(MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, root, comm_), "MPI_Gather");
    std::vector<int> displs;
    Bytes all;
    if (rank_ == root) layout(counts, displs, all);
    check(MPI_Gatherv(in.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, root, comm_), "MPI_Gatherv");
    return rank_ == root ? split(all, counts, displs) : std::vector<Bytes>{};
  }

  Bytes scatter(const std::vector<Bytes>& parts, int root) {
    std::vector<int> counts, displs;
    Bytes all;
    if (rank_ == root) {
      if (parts.size() != static_cast<std::size_t>(size_)) throw error("scatter needs one message per rank: " + std::to_string(parts.size()) + " for " + std::to_string(size_));
      for (const auto& p : parts) counts.push_back(count(p.size()));
      layout(counts, displs, all);
      for (std::size_t i = 0; i < parts.size(); ++i) std::copy(parts[i].begin(), parts[i].end(), all.begin() + displs[i]);
    }
    int n = 0;
    check(MPI_Scatter(counts.data(), 1, MPI_INT, &n, 1, MPI_INT, root, comm_), "MPI_Scatter");
    Bytes mine(static_cast<std::size_t>(n));
    check(MPI_Scatterv(all.data(), counts.data(), displs.data(), MPI_BYTE, mine.data(), n, MPI_BYTE, root, comm_), "MPI_Scatterv");
    return mine;
  }

  std::vector<Bytes> allgather(std::span<const std::byte> in) {
    const int n = count(in.size());
    std::vector<int> counts(static_cast<std::size_t>(size_)), displs;
    check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather");
    Bytes all;
    layout(counts, displs, all);
    check(MPI_Allgatherv(in.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, comm_), "MPI_Allgatherv");
    return split(all, counts, displs);
  }

  /// The lowest failing rank (MPI_Allreduce with MPI_MIN), then its message broadcast from it.
  Status all_reduce_status(const Status& mine) {
    int candidate = mine.ok() ? size_ : rank_, first = size_;
    check(MPI_Allreduce(&candidate, &first, 1, MPI_INT, MPI_MIN, comm_), "MPI_Allreduce");
    if (first == size_) return {};
    Bytes msg = first == rank_ ? to_bytes(mine.message) : Bytes{};
    broadcast(msg, first);
    return {first, to_string(msg)};
  }

 private:
  static void check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw error(std::string(call) + " failed: " + std::string(text, static_cast<std::size_t>(len)));
  }
  static int count(std::size_t n) {
    if (n > static_cast<std::size_t>(INT_MAX)) throw unsupported_error("a gathered message larger than 2 GiB (" + std::to_string(n) + " bytes)");
    return static_cast<int>(n);
  }
  static void layout(const std::vector<int>& counts, std::vector<int>& displs, Bytes& all) {
    std::uint64_t total = 0;
    for (int c : counts) {
      displs.push_back(static_cast<int>(total));
      total += static_cast<std::uint64_t>(c);
      if (total > static_cast<std::uint64_t>(INT_MAX)) throw unsupported_error("gathered messages larger than 2 GiB in all");
    }
    all.resize(static_cast<std::size_t>(total));
  }
  static std::vector<Bytes> split(const Bytes& all, const std::vector<int>& counts, const std::vector<int>& displs) {
    std::vector<Bytes> out;
    for (std::size_t i = 0; i < counts.size(); ++i) out.emplace_back(all.begin() + displs[i], all.begin() + displs[i] + counts[i]);
    return out;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};
static_assert(Communicator<MpiComm>);

}  // namespace ckpt::dist
