// ckpt/integrations/torch.hpp — libtorch as a first-class citizen (opt in by including this
// header and linking libtorch; the rest of ckpt never includes torch):
//  - at::Tensor (= torch::Tensor) is a tensor type of every dtype both have, any layout and any
//    device. Saving a contiguous CPU tensor borrows its memory (no copy); a non-contiguous one
//    is saved as its contiguous values; a CUDA tensor is copied to host memory through pinned
//    staging buffers reused across saves (torch_staging_stats()), so an async
//    CheckpointManager::save blocks only for the device-to-host copy. Loading into a defined
//    tensor writes in place (copy_, keeping its device and dtype; shape or dtype mismatch is a
//    mismatch_error naming the key); into an undefined one creates a CPU tensor, which with
//    LoadOptions::mmap views the file mapping (read-only) instead of copying.
//  - every torch::nn::Module and ModuleHolder (torch::nn::Linear, Sequential, TORCH_MODULEs)
//    is Checkpointable with exactly Python's `module.state_dict()`: flat dotted keys, per
//    module its parameters, its buffers, then its children.
//  - torch::optim::{Adam, AdamW, SGD, RMSprop, Adagrad} are Checkpointable in Python's
//    `optimizer.state_dict()` layout (integrations/torch_optim.hpp).
#pragma once

#include <torch/torch.h>    // at::Tensor, torch::nn::Module, torch::optim
#include <torch/version.h>  // TORCH_VERSION_MAJOR/MINOR: which dtypes this libtorch has

#include <concepts>       // std::derived_from
#include <cstddef>        // std::byte
#include <cstdint>        // sizes
#include <cstring>        // std::memcpy
#include <map>            // the staging pool, by size
#include <memory>         // owners of staged copies
#include <mutex>          // the staging pool is shared by threads
#include <optional>       // dtype lookups
#include <string>         // keys, messages
#include <unordered_map>  // a file's tensors by flat name
#include <unordered_set>  // names a module used
#include <utility>        // std::move
#include <vector>         // module entries

#include "../ckpt.hpp"  // Checkpointable, Tensor, StateDict, Checkpoint and the backends users save with

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define CKPT_TORCH_HAS_FLOAT8 1  // at::kFloat8_e4m3fn / kFloat8_e5m2 (torch >= 2.1)
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define CKPT_TORCH_HAS_UINT_WIDE 1  // at::kUInt16 / kUInt32 / kUInt64 (torch >= 2.3)
#endif

namespace ckpt {

/// What the pinned host buffers that CUDA tensors are staged through hold (see torch.hpp's top).
struct TorchStagingStats {
  std::uint64_t held_bytes = 0;    ///< pinned memory allocated and not released
  std::uint64_t lent_bytes = 0;    ///< part of it viewed by saves not yet written
  std::uint64_t reused_bytes = 0;  ///< bytes staged into a buffer an earlier save used, in total
};

namespace detail::libtorch {

inline std::optional<DType> dtype_of(c10::ScalarType s) {
  switch (s) {
    case at::kDouble: return DType::f64;
    case at::kFloat: return DType::f32;
    case at::kHalf: return DType::f16;
    case at::kBFloat16: return DType::bf16;
    case at::kChar: return DType::i8;
    case at::kShort: return DType::i16;
    case at::kInt: return DType::i32;
    case at::kLong: return DType::i64;
    case at::kByte: return DType::u8;
    case at::kBool: return DType::boolean;
    case at::kComplexFloat: return DType::c64;
    case at::kComplexDouble: return DType::c128;
#ifdef CKPT_TORCH_HAS_FLOAT8
    case c10::ScalarType::Float8_e4m3fn: return DType::f8_e4m3;
    case c10::ScalarType::Float8_e5m2: return DType::f8_e5m2;
#endif
#ifdef CKPT_TORCH_HAS_UINT_WIDE
    case c10::ScalarType::UInt16: return DType::u16;
    case c10::ScalarType::UInt32: return DType::u32;
    case c10::ScalarType::UInt64: return DType::u64;
#endif
    default: return std::nullopt;
  }
}

inline std::optional<c10::ScalarType> scalar_type_of(DType d) {
  switch (d) {
    case DType::f64: return at::kDouble;
    case DType::f32: return at::kFloat;
    case DType::f16: return at::kHalf;
    case DType::bf16: return at::kBFloat16;
    case DType::i8: return at::kChar;
    case DType::i16: return at::kShort;
    case DType::i32: return at::kInt;
    case DType::i64: return at::kLong;
    case DType::u8: return at::kByte;
    case DType::boolean: return at::kBool;
    case DType::c64: return at::kComplexFloat;
    case DType::c128: return at::kComplexDouble;
#ifdef CKPT_TORCH_HAS_FLOAT8
    case DType::f8_e4m3: return c10::ScalarType::Float8_e4m3fn;
    case DType::f8_e5m2: return c10::ScalarType::Float8_e5m2;
#endif
#ifdef CKPT_TORCH_HAS_UINT_WIDE
    case DType::u16: return c10::ScalarType::UInt16;
    case DType::u32: return c10::ScalarType::UInt32;
    case DType::u64: return c10::ScalarType::UInt64;
#endif
    default: return std::nullopt;
  }
}

inline std::string version_string() { return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR); }

/// The libtorch dtype for `d`, or a mismatch_error (key filled in by the caller's prefix).
inline c10::ScalarType scalar_type_or_throw(DType d) {
  if (auto s = scalar_type_of(d)) return *s;
  throw mismatch_error("dtype not available in libtorch " + version_string(), "", "a dtype this libtorch has", std::string(name(d)));
}

inline Shape shape_of(const at::Tensor& t) { return Shape(t.sizes().begin(), t.sizes().end()); }

/// Pinned host buffers for device-to-host copies, kept for reuse: a save leases one per tensor
/// and gives it back when the last ckpt::Tensor viewing it goes (after the write, for an async
/// save). Never destroyed: freeing pinned memory after CUDA shut down at exit would crash.
class PinnedPool {
 public:
  static PinnedPool& instance() {
    static PinnedPool* pool = new PinnedPool;  // NOLINT: intentionally immortal (see above)
    return *pool;
  }
  /// A pinned buffer of `n` bytes, viewed by the returned owner until it is released.
  std::pair<std::byte*, std::shared_ptr<const void>> lease(std::size_t n) {
    at::Tensor buf;
    {
      std::lock_guard lk(mu_);
      if (auto it = free_.find(n); it != free_.end()) {
        buf = std::move(it->second);
        free_.erase(it);
      }
    }
    const bool reused = buf.defined();
    if (!reused) buf = at::empty({static_cast<std::int64_t>(n)}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
    {
      std::lock_guard lk(mu_);
      (reused ? stats_.reused_bytes : stats_.held_bytes) += n;
      stats_.lent_bytes += n;
    }
    auto* p = static_cast<std::byte*>(buf.data_ptr());
    std::shared_ptr<const void> owner(p, [this, buf, n](const void*) mutable {
      try {
        std::lock_guard lk(mu_);
        stats_.lent_bytes -= n;
        free_.emplace(n, std::move(buf));
      } catch (...) {  // cannot keep it for reuse: buf just goes
      }
    });
    return {p, std::move(owner)};
  }
  /// Free the buffers no save is using.
  void release() {
    std::multimap<std::size_t, at::Tensor> drop;
    std::lock_guard lk(mu_);
    for (const auto& [n, b] : free_) stats_.held_bytes -= n;
    drop.swap(free_);
  }
  TorchStagingStats stats() const {
    std::lock_guard lk(mu_);
    return stats_;
  }

 private:
  PinnedPool() = default;
  mutable std::mutex mu_;
  std::multimap<std::size_t, at::Tensor> free_;
  TorchStagingStats stats_;
};

/// A ckpt::Tensor viewing `held`'s bytes and keeping it alive (a snapshot nobody else writes).
inline Tensor owned_view(at::Tensor held, DType dt) {
  auto h = std::make_shared<at::Tensor>(std::move(held));
  const auto n = static_cast<std::size_t>(h->numel()) * element_size(dt);
  const TensorView v{dt, shape_of(*h), static_cast<const std::byte*>(h->data_ptr()), n};
  return Tensor::view_of(v, std::move(h));  // (v first: arguments are evaluated in any order)
}

/// `t` as a ckpt::Tensor for saving: a contiguous CPU tensor is borrowed (the caller keeps it
/// alive, and an async save copies it like any borrowed memory); anything else becomes a
/// contiguous host snapshot that the returned tensor owns. `key` names it in errors.
inline Tensor to_ckpt(const at::Tensor& t, const std::string& key = {}) {
  if (!t.defined()) throw unsupported_error("cannot save an undefined at::Tensor", "", key);
  if (t.layout() != at::kStrided || t.is_quantized())
    throw unsupported_error("only dense (strided, not quantized) at::Tensors can be saved", "", key);
  const auto dt = dtype_of(t.scalar_type());
  if (!dt) throw unsupported_error(std::string("at::Tensor dtype ") + c10::toString(t.scalar_type()) + " has no ckpt dtype", "", key);
  at::Tensor v = t.detach();
  if (v.is_conj()) v = v.resolve_conj();  // lazy conjugate / negative views: the bytes are not
  if (v.is_neg()) v = v.resolve_neg();    // transformed until resolved
  const auto nbytes = static_cast<std::size_t>(v.numel()) * element_size(*dt);
  if (v.device().is_cpu()) {
    if (v.is_contiguous() && v.data_ptr() == t.data_ptr())
      return Tensor::borrow({*dt, shape_of(v), static_cast<const std::byte*>(v.data_ptr()), nbytes});
    return owned_view(v.contiguous(), *dt);
  }
  if (v.is_cuda() && at::hasCUDA() && nbytes > 0) {
    // Untested here (Debian's libtorch is CPU-only): copy into a reused pinned buffer, the one
    // copy an async save waits for; the manager does not copy a viewed snapshot again.
    auto [p, owner] = PinnedPool::instance().lease(nbytes);
    at::Tensor host = ::torch::from_blob(p, v.sizes(), at::TensorOptions().dtype(v.scalar_type()));
    host.copy_(v);  // blocking device-to-host copy; contiguous whatever v's strides
    return Tensor::view_of({*dt, shape_of(v), p, nbytes}, std::move(owner));
  }
  return owned_view(v.to(at::kCPU).contiguous(), *dt);
}

/// A CPU at::Tensor viewing `src`'s bytes (no copy, no ownership: for copy_ and clone only).
inline at::Tensor view_of(const Tensor& src) {
  const auto st = scalar_type_or_throw(src.dtype());
  return ::torch::from_blob(const_cast<std::byte*>(src.data()), src.shape(), at::TensorOptions().dtype(st));
}

/// A new CPU at::Tensor holding a copy of `src`.
inline at::Tensor copy_of(const Tensor& src) {
  at::Tensor out = ::torch::empty(src.shape(), at::TensorOptions().dtype(scalar_type_or_throw(src.dtype())));
  if (src.nbytes()) std::memcpy(out.data_ptr(), src.data(), src.nbytes());
  return out;
}

/// A mismatch_error unless `src` has `dst`'s dtype and shape (dst defined).
inline void check_fits(const at::Tensor& dst, const Tensor& src) {
  const auto want = dtype_of(dst.scalar_type());
  if (!want) throw mismatch_error("destination dtype has no ckpt dtype", "", c10::toString(dst.scalar_type()), std::string(name(src.dtype())));
  const Shape shape = shape_of(dst);
  check_assignable(src, *want, &shape);
}

/// Copy `src` into `dst` in place (its device, dtype and strides stay), without autograd.
inline void copy_into(at::Tensor& dst, const Tensor& src) {
  if (src.nbytes() == 0) return;
  ::torch::NoGradGuard no_grad;
  dst.copy_(view_of(src));
}

}  // namespace detail::libtorch

/// Pinned staging memory of CUDA saves; `release_torch_staging()` frees the buffers no save uses.
inline TorchStagingStats torch_staging_stats() { return detail::libtorch::PinnedPool::instance().stats(); }
inline void release_torch_staging() { detail::libtorch::PinnedPool::instance().release(); }

/// at::Tensor as a TensorLike: `view` is the zero-copy view of a contiguous CPU tensor (other
/// tensors have none: save them through to_state_dict, which copies); `assign` writes a defined
/// tensor in place (dtype and shape must match) or makes an undefined one a new CPU tensor.
template <>
struct tensor_traits<at::Tensor> {
  static TensorView view(const at::Tensor& t) {
    if (t.defined() && t.layout() == at::kStrided && (!t.device().is_cpu() || !t.is_contiguous() || t.is_conj() || t.is_neg()))
      throw unsupported_error("a non-contiguous or non-CPU at::Tensor has no zero-copy view; save it through ckpt::to_state_dict, which copies it");
    return detail::libtorch::to_ckpt(t).view();  // borrowed (or an error for undefined, sparse, ...)
  }
  static void assign(at::Tensor& dst, const Tensor& src) {
    if (!dst.defined()) {
      dst = detail::libtorch::copy_of(src);
      return;
    }
    detail::libtorch::check_fits(dst, src);
    detail::libtorch::copy_into(dst, src);
  }
};

/// at::Tensor as a Checkpointable leaf (see the file comment for save and load).
template <>
struct checkpoint_traits<at::Tensor> {
  static StateDict state_dict(const at::Tensor& t) { return StateDict(detail::libtorch::to_ckpt(t)); }
  static LoadReport load_state_dict(at::Tensor& t, const StateDict& sd, const LoadOptions& o) {
    if (!sd.is_tensor()) throw mismatch_error("wrong kind of value", "", "tensor", detail::node_desc(sd));
    const Tensor& src = sd.tensor();
    if (!t.defined() && o.mmap && src.owner() && !src.writable() && src.nbytes()) {
      // View the mapping: the deleter holds it; the tensor is read-only (writing it faults).
      auto keep = src.owner();
      t = ::torch::from_blob(const_cast<std::byte*>(src.data()), src.shape(), [keep](void*) mutable { keep.reset(); },
                             at::TensorOptions().dtype(detail::libtorch::scalar_type_or_throw(src.dtype())));
      return {};
    }
    tensor_traits<at::Tensor>::assign(t, src);
    return {};
  }
};

// ---- modules ------------------------------------------------------------------------------

namespace detail::libtorch {

/// Python's `state_dict()` entries of `m`: per module its parameters, its buffers, then its
/// children, under dotted names (undefined ones, like a bias=false Conv's, are skipped).
inline void collect(const ::torch::nn::Module& m, const std::string& prefix, std::vector<std::pair<std::string, at::Tensor>>& out) {
  for (const auto& p : m.named_parameters(/*recurse=*/false)) out.emplace_back(prefix + p.key(), p.value());
  for (const auto& b : m.named_buffers(/*recurse=*/false)) out.emplace_back(prefix + b.key(), b.value());
  for (const auto& c : m.named_children()) collect(*c.value(), prefix + c.key() + ".", out);
}

inline StateDict module_state_dict(const ::torch::nn::Module& m) {
  std::vector<std::pair<std::string, at::Tensor>> entries;
  collect(m, "", entries);
  StateDict sd;
  for (const auto& [k, t] : entries) sd.set(k, StateDict(to_ckpt(t, KeyPath{k}.str())));
  return sd;
}

/// Load a module state dict, flat ("0.weight", as Python and ckpt write it) or nested (as a
/// flat format may read dotted names back). Everything is checked before anything is copied;
/// strict with missing or unexpected keys copies nothing (the caller raises key_error).
inline LoadReport load_module(::torch::nn::Module& m, const StateDict& sd, const LoadOptions& o) {
  expect_dict(sd, "a torch::nn::Module");
  std::vector<std::pair<std::string, at::Tensor>> entries;
  collect(m, "", entries);
  std::unordered_map<std::string, const StateDict*> file;
  const auto leaves = sd.flatten();
  for (const auto& [p, leaf] : leaves) file.emplace(p.joined(), leaf);
  LoadReport r;
  std::unordered_set<std::string> used;
  std::vector<std::pair<at::Tensor, const Tensor*>> todo;
  for (auto& [name, dst] : entries) {
    const KeyPath kp{name};
    const auto it = file.find(name);
    if (it == file.end()) {
      r.missing.push_back(kp.str());
      continue;
    }
    used.insert(name);
    try {
      if (!it->second->is_tensor()) throw mismatch_error("wrong kind of value", "", "tensor", node_desc(*it->second));
      check_fits(dst, it->second->tensor());
      todo.emplace_back(dst, &it->second->tensor());
    } catch (const mismatch_error& e) {
      if (!o.skip_mismatched) rethrow_with_prefix(e, kp);
      r.mismatched.push_back(kp.str() + " (expected " + e.expected() + ", got " + e.got() + ")");
    }
  }
  for (const auto& [p, leaf] : leaves)
    if (!used.count(p.joined())) r.unexpected.push_back(p.str());
  if (o.strict && (!r.missing.empty() || !r.unexpected.empty())) return r;
  for (auto& [dst, src] : todo) copy_into(dst, *src);
  return r;
}

template <class T>
concept module_holder = requires { typename T::ContainedType; } &&
                        std::derived_from<typename T::ContainedType, ::torch::nn::Module> &&
                        std::derived_from<T, ::torch::nn::ModuleHolder<typename T::ContainedType>>;

}  // namespace detail::libtorch

/// Every torch::nn::Module: Python's `module.state_dict()`, flat dotted keys in Python's order.
template <class T>
  requires std::derived_from<T, ::torch::nn::Module>
struct checkpoint_traits<T> {
  static StateDict state_dict(const T& m) { return detail::libtorch::module_state_dict(m); }
  static LoadReport load_state_dict(T& m, const StateDict& sd, const LoadOptions& o) { return detail::libtorch::load_module(m, sd, o); }
};

/// ModuleHolders (torch::nn::Linear, Sequential, TORCH_MODULE(Net)): the module they hold.
template <class T>
  requires detail::libtorch::module_holder<T>
struct checkpoint_traits<T> {
  static StateDict state_dict(const T& h) {
    if (h.is_empty()) throw unsupported_error("cannot save an empty ModuleHolder");
    return detail::libtorch::module_state_dict(*h);
  }
  static LoadReport load_state_dict(T& h, const StateDict& sd, const LoadOptions& o) {
    if (h.is_empty()) throw unsupported_error("cannot load into an empty ModuleHolder");
    return detail::libtorch::load_module(*h, sd, o);
  }
};

}  // namespace ckpt

#include "torch_optim.hpp"  // torch::optim::{Adam, AdamW, SGD, RMSprop, Adagrad}
