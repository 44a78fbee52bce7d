// ckpt/detail/crc_lane.hpp — checksumming beside I/O. A CrcLane owns one background thread
// (started on first use) that computes a CRC-32 while the caller's thread is in write(2) or
// pread(2), so a save or an eager load costs max(I/O, CRC) instead of their sum. One job is in
// flight at a time; jobs below a threshold run inline, where a hand-off would cost more.
#pragma once

#include <condition_variable>  // hand-off
#include <cstddef>             // std::byte
#include <cstdint>             // CRC state
#include <mutex>               // hand-off
#include <span>                // job bytes
#include <thread>              // the lane

#include "crc32.hpp"  // crc32_update

namespace ckpt::detail {

class CrcLane {
 public:
  /// Jobs smaller than this are computed inline by start().
  static constexpr std::size_t min_async_bytes = std::size_t{1} << 20;

  CrcLane() = default;
  CrcLane(const CrcLane&) = delete;
  CrcLane& operator=(const CrcLane&) = delete;
  ~CrcLane() {
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
    if (data.size() < min_async_bytes) {
      result_ = crc32_update(seed, data);
      inline_ = true;
      return;
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    {
      std::lock_guard lk(m_);
      seed_ = seed;
      data_ = data;
      has_job_ = true;
      done_ = false;
    }
    inline_ = false;
    cv_.notify_all();
  }
  /// The result of the last start().
  std::uint32_t wait() {
    if (inline_) return result_;
    std::unique_lock lk(m_);
    cv_.wait(lk, [&] { return done_; });
    return result_;
  }

  /// CRC-32 of `total` bytes that `fill(offset, n)` produces chunk by chunk (returning the
  /// span it filled), checksumming chunk k on the lane while chunk k + 1 is being filled.
  /// `fill` may reuse the memory of chunk k - 2 (double buffering is safe). If fill throws,
  /// the job in flight is waited for before the exception leaves.
  template <class Fill>
  std::uint32_t over_chunks(std::uint64_t total, std::size_t chunk, Fill&& fill) {
    std::uint32_t c = 0;
    bool pending = false;
    try {
      for (std::uint64_t done = 0; done < total;) {
        const auto n = static_cast<std::size_t>(total - done < chunk ? total - done : chunk);
        const std::span<const std::byte> got = fill(done, n);
        if (pending) c = wait();
        start(c, got);
        pending = true;
        done += n;
      }
    } catch (...) {
      if (pending) (void)wait();
      throw;
    }
    return pending ? wait() : c;
  }

 private:
  void loop() {
    std::unique_lock lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return has_job_ || stop_; });
      if (has_job_) {
        const auto seed = seed_;
        const auto data = data_;
        lk.unlock();
        const auto r = crc32_update(seed, data);
        lk.lock();
        result_ = r;
        has_job_ = false;
        done_ = true;
        cv_.notify_all();
      } else {
        return;
      }
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::uint32_t seed_ = 0, result_ = 0;
  std::span<const std::byte> data_;
  bool has_job_ = false, done_ = false, stop_ = false, inline_ = true;
  std::thread thread_;  // last: started lazily, joined first
};

}  // namespace ckpt::detail
