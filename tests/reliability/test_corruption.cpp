// Corruption tests over every built-in file format (formats added to builtin_formats join
// automatically): flip each byte in turn and truncate at every length. Loading must raise a
// ckpt::error or yield exactly the original values (a flip in padding or an unused field) —
// never crash (the asan preset runs this), and in formats with checksums never yield silently
// different tensors.
#include "ckpt_catch.hpp"
#include <algorithm>
#include <ckpt/ckpt.hpp>

#include "test_util.hpp"

using namespace ckpt;

namespace {
StateDict small_state() {
  StateDict sd;
  sd["model"].set("0.weight", Tensor::from<float>({1.5f, -2.0f, 3.25f, 0.5f, 8.0f, -1.0f}, {2, 3}));
  sd["model"].set("0.bias", Tensor::from<float>({0.25f, -0.75f}));
  sd["steps"] = Tensor::from<std::int64_t>({7, 9});
  return sd;
}

struct Tally {
  std::size_t cases = 0, errors = 0, identical = 0, silently_different = 0;
  std::size_t not_format_error = 0;  // truncations only: an error other than format_error
  std::size_t no_offset = 0;         // truncations only: a format_error without a byte offset
};

// Only the tensors are compared: formats without a metadata tree legitimately return a flat
// or differently-nested tree; what matters is that no tensor comes back with other bytes.
bool tensors_equal(const StateDict& a, const StateDict& b) {
  auto fa = a.flatten(), fb = b.flatten();
  std::map<std::string, const Tensor*> mb;
  for (auto& [p, v] : fb)
    if (v->is_tensor()) mb[p.joined()] = &v->tensor();
  std::size_t n = 0;
  for (auto& [p, v] : fa) {
    if (!v->is_tensor()) continue;
    auto it = mb.find(p.joined());
    if (it == mb.end() || !(*it->second == v->tensor())) return false;
    ++n;
  }
  return n == mb.size();
}

template <class F>
void try_load(const std::filesystem::path& p, const StateDict& original, const LoadOptions& lo, Tally& t) {
  ++t.cases;
  try {
    const StateDict got = load_as<F>(p, lo);
    if (tensors_equal(got, original)) ++t.identical;
    else ++t.silently_different;
  } catch (const format_error& e) {
    ++t.errors;
    if (e.offset() == format_error::no_offset) ++t.no_offset;
  } catch (const ckpt::error&) {
    ++t.errors;
    ++t.not_format_error;
  }
}

// One file of format F saved with `so`, swept with every byte flipped and every truncation,
// loaded with `lo`.
template <class F>
void sweep(const ckpt_test::TempDir& dir, const SaveOptions& so, const LoadOptions& lo, const std::string& label) {
  const auto p = dir / ("c" + std::string(archive_traits<F>::extensions[0]));
  StateDict original = small_state();
  try {
    save_as<F>(p, original, so);
  } catch (const unsupported_error&) {  // a one-tensor format (.npy): a lone tensor
    original = StateDict(Tensor::from<float>({1.5f, -2.0f, 3.25f, 0.5f, 8.0f, -1.0f}, {2, 3}));
    save_as<F>(p, original, so);
  }
  const StateDict clean = load_as<F>(p, lo);
  REQUIRE(tensors_equal(clean, original));
  const auto bytes = ckpt_test::read_bytes(p);
  const auto q = dir / ("x" + std::string(archive_traits<F>::extensions[0]));

  Tally flips, cuts;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto b = bytes;
    b[i] = static_cast<char>(b[i] ^ 0xff);
    ckpt_test::write_bytes(q, b);
    try_load<F>(q, original, lo, flips);
  }
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    ckpt_test::write_bytes(q, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    try_load<F>(q, original, lo, cuts);
  }
  INFO(label << ": " << bytes.size() << " bytes; flips: " << flips.errors << " errors, " << flips.identical << " identical, "
             << flips.silently_different << " different; truncations: " << cuts.errors << " errors ("
             << cuts.not_format_error << " not format_error, " << cuts.no_offset << " without an offset)");
  WARN(label << ": " << flips.cases << " flips (" << flips.errors << " errors, " << flips.identical << " identical, "
             << flips.silently_different << " silently different), " << cuts.cases << " truncations (" << cuts.errors << " errors)");
  // A cut file is structurally short: a format_error that says where, never a wrong load (a
  // JSON text cut in its trailing whitespace is still the whole text).
  CHECK(cuts.silently_different == 0);
  CHECK(cuts.not_format_error == 0);
  CHECK(cuts.no_offset == 0);
  if constexpr (archive_traits<F>::caps.checksums) CHECK(flips.silently_different == 0);
  CHECK(flips.errors > 0);
}

template <class F>
void run_format(const ckpt_test::TempDir& dir) {
  if constexpr (archive_traits<F>::caps.directory) {
    return;  // directory formats: the sharded-directory test below and their own tests
  } else {
    const std::string name(archive_traits<F>::name);
    LoadOptions mapped;
    mapped.mmap = true;
    mapped.verify = true;
    sweep<F>(dir, {}, {}, name);
    sweep<F>(dir, {}, mapped, name + " (mmap, verify)");
    if constexpr (archive_traits<F>::caps.compression) {
      SaveOptions z;
      z.codec = "zlib";
      sweep<F>(dir, z, {}, name + " (zlib)");
      sweep<F>(dir, z, mapped, name + " (zlib, mmap, verify)");
    }
  }
}
}  // namespace

TEST_CASE("every byte flipped and every truncation: an error or the original values, never a crash", "[reliability][corruption]") {
  ckpt_test::TempDir dir;
  detail::for_each_format([&]<class F>(F) {
    INFO(archive_traits<F>::name);
    run_format<F>(dir);
  });
}

TEST_CASE("a sharded safetensors directory: every byte of every file flipped, every file truncated", "[reliability][corruption][sharded]") {
  ckpt_test::TempDir dir;
  const auto set = dir / "set";
  const StateDict original = small_state();
  safetensors::save_sharded(set, original, 16);  // a shard per tensor, and the index
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(set)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 4);
  Tally flips, cuts;
  for (const auto& f : files) {
    const auto bytes = ckpt_test::read_bytes(f);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      auto b = bytes;
      b[i] = static_cast<char>(b[i] ^ 0xff);
      ckpt_test::write_bytes(f, b);
      try_load<safetensors_sharded_format>(set, original, {}, flips);
    }
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      ckpt_test::write_bytes(f, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
      try_load<safetensors_sharded_format>(set, original, {}, cuts);
    }
    ckpt_test::write_bytes(f, bytes);
  }
  WARN("sharded safetensors: " << flips.cases << " flips (" << flips.errors << " errors, " << flips.identical << " identical, "
                               << flips.silently_different << " silently different), " << cuts.cases << " truncations (" << cuts.errors
                               << " errors, " << cuts.not_format_error << " not format_error, " << cuts.no_offset << " without an offset)");
  CHECK(tensors_equal(load_as<safetensors_sharded_format>(set), original));
  CHECK(cuts.silently_different == 0);  // the index cut in its trailing newline still loads
  CHECK(cuts.not_format_error == 0);
  CHECK(cuts.no_offset == 0);
  CHECK(flips.errors > 0);
}
