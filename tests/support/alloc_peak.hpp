// Replaces the global operator new of the test executable that includes this header (include
// it from exactly one source file per executable) to record the largest single allocation, so
// resource-limit tests can assert that a hostile header did not make a reader allocate what it
// claims. Allocations go to malloc as usual, so the sanitizers still see every one. A limit
// (AllocationLimit) makes larger allocations fail with std::bad_alloc, as they would under
// `ulimit -v`, without limiting the process (which the sanitizers' shadow memory forbids).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace ckpt_test {
inline std::atomic<std::size_t>& largest_allocation() {
  static std::atomic<std::size_t> v{0};
  return v;
}
/// Allocations above this many bytes throw std::bad_alloc (the nothrow forms return null).
inline std::atomic<std::size_t>& allocation_limit() {
  static std::atomic<std::size_t> v{~std::size_t{0}};
  return v;
}
/// Sets allocation_limit() for its lifetime.
class AllocationLimit {
 public:
  explicit AllocationLimit(std::size_t n) { allocation_limit() = n; }
  ~AllocationLimit() { allocation_limit() = ~std::size_t{0}; }
  AllocationLimit(const AllocationLimit&) = delete;
  AllocationLimit& operator=(const AllocationLimit&) = delete;
};
inline bool allocation_allowed(std::size_t n) { return n <= allocation_limit().load(std::memory_order_relaxed); }
inline void note_allocation(std::size_t n) {
  auto& v = largest_allocation();
  for (std::size_t cur = v.load(std::memory_order_relaxed); n > cur && !v.compare_exchange_weak(cur, n, std::memory_order_relaxed);) {
  }
}
}  // namespace ckpt_test

void* operator new(std::size_t n) {
  ckpt_test::note_allocation(n);
  if (!ckpt_test::allocation_allowed(n)) throw std::bad_alloc();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  ckpt_test::note_allocation(n);
  if (!ckpt_test::allocation_allowed(n)) throw std::bad_alloc();
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
// The nothrow forms too (Catch uses them): every new and delete of the program must be ours,
// or the sanitizers report mismatched allocation and deallocation functions.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ckpt_test::note_allocation(n);
  if (!ckpt_test::allocation_allowed(n)) return nullptr;
  return std::malloc(n ? n : 1);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  ckpt_test::note_allocation(n);
  if (!ckpt_test::allocation_allowed(n)) return nullptr;
  const auto al = static_cast<std::size_t>(a);
  return std::aligned_alloc(al, (n + al - 1) / al * al);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept { return ::operator new(n, a, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
