// Test helpers (never in include/): a self-removing temporary directory, seeded random
// tensors of any dtype, and file byte edits.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <ckpt/ckpt.hpp>
#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace ckpt_test {
namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    static std::mt19937_64 rng{std::random_device{}()};
    path_ = fs::temp_directory_path() / ("ckpt-test-" + std::to_string(::getpid()) + "-" + std::to_string(rng()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  /// Names of the entries in the directory, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(path_)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }

 private:
  fs::path path_;
};

/// A tensor of `dtype` and `shape` filled with seeded random bytes that are valid values
/// (bools are 0/1; floats are finite random values so equality is meaningful).
inline ckpt::Tensor random_tensor(ckpt::DType dtype, ckpt::Shape shape, std::uint64_t seed) {
  ckpt::Tensor t(dtype, std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  auto* p = t.mutable_data();
  const auto n = static_cast<std::size_t>(t.numel());
  switch (dtype) {
    case ckpt::DType::boolean:
      for (std::size_t i = 0; i < n; ++i) p[i] = std::byte(rng() & 1);
      break;
    case ckpt::DType::f32:
      for (auto& v : t.mutable_values<float>()) v = normal(rng);
      break;
    case ckpt::DType::f64:
      for (auto& v : t.mutable_values<double>()) v = normal(rng);
      break;
    case ckpt::DType::f16:
      for (auto& v : t.mutable_values<ckpt::float16>()) v = ckpt::float16(normal(rng));
      break;
    case ckpt::DType::bf16:
      for (auto& v : t.mutable_values<ckpt::bfloat16>()) v = ckpt::bfloat16(normal(rng));
      break;
    default:
      for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] = std::byte(rng() & 0xff);
  }
  return t;
}

inline std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}
inline void write_bytes(const fs::path& p, const std::vector<char>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
}

/// Replace a .ckpt file's footer text by `edit` of it, with a matching trailer (length,
/// CRC-32): for hostile footers that get past the checksum.
inline void rewrite_native_footer_text(const fs::path& p, const std::function<std::string(const std::string&)>& edit) {
  auto b = read_bytes(p);
  std::uint64_t off, len;
  std::memcpy(&off, b.data() + b.size() - 32, 8);
  std::memcpy(&len, b.data() + b.size() - 24, 8);
  const std::string text = edit(std::string(b.data() + off, len));
  std::vector<char> out(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(off));
  out.insert(out.end(), text.begin(), text.end());
  std::array<char, 32> tr{};
  const std::uint64_t n = text.size();
  const std::uint32_t crc = ckpt::detail::crc32(std::as_bytes(std::span(text)));
  std::memcpy(tr.data(), &off, 8);
  std::memcpy(tr.data() + 8, &n, 8);
  std::memcpy(tr.data() + 16, &crc, 4);
  std::memcpy(tr.data() + 20, b.data() + b.size() - 12, 12);
  out.insert(out.end(), tr.begin(), tr.end());
  write_bytes(p, out);
}
/// The same with `edit` of the parsed footer: for hostile tables that get past the checksum.
inline void rewrite_native_footer(const fs::path& p, const std::function<void(ckpt::Value&)>& edit) {
  rewrite_native_footer_text(p, [&](const std::string& text) {
    ckpt::Value footer = ckpt::Value::parse(text);
    edit(footer);
    return footer.dump();
  });
}

/// Pages of `p` in the page cache (mincore over a read-only mapping; it reads nothing in).
inline std::size_t resident_pages(const fs::path& p) {
  const auto size = static_cast<std::size_t>(fs::file_size(p));
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("resident_pages: cannot open " + p.string());
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) throw std::runtime_error("resident_pages: cannot map " + p.string());
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((size + page - 1) / page);
  const int rc = ::mincore(m, size, vec.data());
  ::munmap(m, size);
  if (rc != 0) throw std::runtime_error("resident_pages: mincore failed on " + p.string());
  return static_cast<std::size_t>(std::count_if(vec.begin(), vec.end(), [](unsigned char c) { return c & 1; }));
}

/// Whether the filesystem holding `dir` drops cached pages on POSIX_FADV_DONTNEED (tmpfs does
/// not: its pages are the file), tried on a control file.
inline bool dontneed_drops_pages(const fs::path& dir) {
  const auto control = dir / "dontneed-control.bin";
  {
    std::ofstream(control, std::ios::binary) << std::string(std::size_t{4} << 20, 'x');
  }
  std::ifstream(control, std::ios::binary).ignore(std::numeric_limits<std::streamsize>::max());
  const std::size_t before = resident_pages(control);
  const int fd = ::open(control.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fdatasync(fd);  // only clean pages can be dropped
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  const bool drops = before > 0 && resident_pages(control) < before / 4;
  fs::remove(control);
  return drops;
}

/// Every file under `p` (or `p` itself, keyed "") by relative name, with its bytes.
inline std::map<std::string, std::vector<char>> snapshot(const fs::path& p) {
  std::map<std::string, std::vector<char>> out;
  if (!fs::exists(p)) return out;
  if (fs::is_regular_file(p)) {
    out[""] = read_bytes(p);
    return out;
  }
  for (const auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file()) out[fs::relative(e.path(), p).string()] = read_bytes(e.path());
  return out;
}

/// Format F's first extension ("" for directory formats, which have none).
template <class F>
std::string first_extension() {
  if constexpr (ckpt::archive_traits<F>::extensions.size() > 0) return std::string(ckpt::archive_traits<F>::extensions[0]);
  else return {};
}

/// Saves make(false) at `p` in format F — or make(true), a lone tensor, where F holds only one
/// (.npy, which refuses a tree with unsupported_error) — and returns what it saved; `lone` says which.
template <class F, class Make>
ckpt::StateDict save_first(const fs::path& p, Make make, bool& lone) {
  lone = false;
  ckpt::StateDict v = make(false);
  try {
    ckpt::save_as<F>(p, v);
  } catch (const ckpt::unsupported_error&) {
    lone = true;
    v = make(true);
    ckpt::save_as<F>(p, v);
  }
  return v;
}

}  // namespace ckpt_test
