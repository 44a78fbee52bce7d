// Replaces the global operator new of the test executable that includes this header (include
// it from exactly one source file per executable) to record the largest single allocation, so
// resource-limit tests can assert that a hostile header did not make a reader allocate what it
// claims. Allocations go to malloc as usual, so the sanitizers still see every one.
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
inline void note_allocation(std::size_t n) {
  auto& v = largest_allocation();
  for (std::size_t cur = v.load(std::memory_order_relaxed); n > cur && !v.compare_exchange_weak(cur, n, std::memory_order_relaxed);) {
  }
}
}  // namespace ckpt_test

void* operator new(std::size_t n) {
  ckpt_test::note_allocation(n);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  ckpt_test::note_allocation(n);
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
// The nothrow forms too (Catch uses them): every new and delete of the program must be ours,
// or the sanitizers report mismatched allocation and deallocation functions.
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ckpt_test::note_allocation(n);
  return std::malloc(n ? n : 1);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  ckpt_test::note_allocation(n);
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
