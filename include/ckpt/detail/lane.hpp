// ckpt/detail/lane.hpp — a second thread beside I/O and copies. A Lane owns one background
// thread (started on first use) that works while the caller's thread is in write(2), pread(2)
// or memcpy:
//  - start/wait: the lane checksums a tensor while the caller writes it (saves);
//  - split: the caller and the lane each read (or copy) one half of an entry in small pieces,
//    checksumming every piece right after it arrives, while it is still in the core's cache
//    (eager loads, verify). Reading is then spread over two cores and the checksum costs no
//    second pass over memory; the two halves' CRCs are joined with crc32_combine;
//  - split_fill: the same division without checksums (unverified loads, the manager's staging
//    copy for async saves).
// One job is in flight at a time; small jobs run inline, where a hand-off would cost more.
#pragma once

#include <zlib.h>  // crc32_combine

#include <condition_variable>  // hand-off
#include <cstddef>             // std::byte
#include <cstdint>             // CRC state
#include <exception>           // a job's exception, rethrown in the caller
#include <limits>              // z_off_t range
#include <mutex>               // hand-off
#include <span>                // job bytes
#include <thread>              // the lane
#include <utility>             // std::exchange

#include "crc32.hpp"  // crc32_update

namespace ckpt::detail {

class Lane {
 public:
  /// start() computes jobs smaller than this inline.
  static constexpr std::size_t min_async_bytes = std::size_t{1} << 20;
  /// split() works on entries of at least this size on two threads, smaller ones inline.
  static constexpr std::size_t min_split_bytes = std::size_t{4} << 20;
  /// split() fills and checksums this much at a time: half a typical L2 cache.
  static constexpr std::size_t piece_bytes = std::size_t{256} << 10;

  Lane() = default;
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;
  ~Lane() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();  // a job in flight finishes first: its bytes are never read after this
  }

  /// Begin the CRC-32 of `data` continuing from `seed`; the bytes must stay valid until
  /// wait() returns. Requires no job in flight.
  void start(std::uint32_t seed, std::span<const std::byte> data) {
    inline_ = data.size() < min_async_bytes;
    if (inline_) {
      result_ = crc32_update(seed, data);
      return;
    }
    seed_ = seed;
    data_ = data;
    post(
        [](void* self) {
          auto& l = *static_cast<Lane*>(self);
          l.result_ = crc32_update(l.seed_, l.data_);
        },
        this);
  }
  /// The result of the last start().
  std::uint32_t wait() {
    if (!inline_) join();
    return result_;
  }

  /// CRC-32 of `total` bytes that `fill(side, offset, n)` produces piece by piece (returning
  /// the span it filled, n <= piece_bytes). Side 0 (this thread) covers the first half, side 1
  /// (the lane) the second, at the same time: `fill` must be safe to call from both threads,
  /// and memory it reuses must be per side. If either side throws, both have stopped before
  /// the exception (the caller's first) leaves.
  template <class Fill>
  std::uint32_t split(std::uint64_t total, Fill&& fill) {
    return split_impl<true>(total, fill);
  }
  /// The same division of work without checksums (unverified eager loads): two threads copy.
  template <class Fill>
  void split_fill(std::uint64_t total, Fill&& fill) {
    (void)split_impl<false>(total, fill);
  }

 private:
  template <bool Checksum, class Fill>
  std::uint32_t split_impl(std::uint64_t total, Fill& fill) {
    const auto run = [&fill](int side, std::uint64_t from, std::uint64_t to) {
      std::uint32_t c = 0;
      for (std::uint64_t at = from; at < to;) {
        const auto n = static_cast<std::size_t>(to - at < piece_bytes ? to - at : piece_bytes);
        const std::span<const std::byte> got = fill(side, at, n);
        if constexpr (Checksum) c = crc32_update(c, got);
        at += n;
      }
      return c;
    };
    const std::uint64_t half = (total / 2) & ~std::uint64_t{4095};  // page-aligned
    if (total < min_split_bytes || std::thread::hardware_concurrency() < 2 ||
        total - half > static_cast<std::uint64_t>(std::numeric_limits<z_off_t>::max()))
      return run(0, 0, total);
    std::uint32_t second = 0;
    auto second_half = [&] { second = run(1, half, total); };
    post([](void* f) { (*static_cast<decltype(second_half)*>(f))(); }, &second_half);
    std::uint32_t first = 0;
    try {
      first = run(0, 0, half);
    } catch (...) {
      try {
        join();
      } catch (...) {  // the caller's exception is the one reported
      }
      throw;
    }
    join();
    return static_cast<std::uint32_t>(::crc32_combine(first, second, static_cast<z_off_t>(total - half)));
  }

  /// Run fn(arg) on the lane; what `arg` points to must outlive the matching join().
  void post(void (*fn)(void*), void* arg) {
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    {
      std::lock_guard lk(m_);
      job_ = {fn, arg};
      has_job_ = true;
      done_ = false;
    }
    cv_.notify_all();
  }
  /// Wait for the posted job; rethrows what it threw.
  void join() {
    std::unique_lock lk(m_);
    cv_.wait(lk, [&] { return done_; });
    if (auto e = std::exchange(error_, nullptr)) std::rethrow_exception(e);
  }

  void loop() {
    std::unique_lock lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return has_job_ || stop_; });
      if (!has_job_) return;
      const Job job = job_;
      lk.unlock();
      std::exception_ptr err;
      try {
        job.fn(job.arg);
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      error_ = err;
      has_job_ = false;
      done_ = true;
      cv_.notify_all();
    }
  }

  struct Job {
    void (*fn)(void*) = nullptr;
    void* arg = nullptr;
  };
  std::mutex m_;
  std::condition_variable cv_;
  Job job_;
  std::exception_ptr error_;
  std::uint32_t seed_ = 0, result_ = 0;
  std::span<const std::byte> data_;
  bool has_job_ = false, done_ = false, stop_ = false, inline_ = true;
  std::thread thread_;  // last: started lazily, joined first
};

}  // namespace ckpt::detail
