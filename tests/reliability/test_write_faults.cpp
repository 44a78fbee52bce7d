// Write faults over every built-in format (new formats join through builtin_formats): the io
// layer's fault hook fails the write(2) that would carry byte k of a save, for many k. The save
// must raise io_error with the errno and a path naming the temporary; nothing may appear under
// the final name; a previous checkpoint there must keep its bytes and still load; and no
// temporary may be left behind. Directory formats count k across all the files they write.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <map>
#include <random>

#include "test_util.hpp"

using namespace ckpt;
namespace fs = std::filesystem;

namespace {

/// Installs a hook that fails the write containing byte `k` of everything this save writes
/// (counted across files); removed on destruction.
struct FaultAt {
  FaultAt(std::uint64_t k, int err) {
    io::write_fault_hook() = [this, k, err](const std::string&, std::uint64_t, std::size_t n) {
      const bool hit = seen <= k && k < seen + n;
      seen += n;
      if (hit) ++fired;
      return hit ? err : 0;
    };
  }
  ~FaultAt() { io::write_fault_hook() = nullptr; }
  FaultAt(const FaultAt&) = delete;
  FaultAt& operator=(const FaultAt&) = delete;
  std::uint64_t seen = 0;
  int fired = 0;
};

/// Bytes a save of `sd` hands to write(2), counted by the hook.
template <class F>
std::uint64_t bytes_written(const fs::path& p, const StateDict& sd) {
  std::uint64_t total = 0;
  io::write_fault_hook() = [&](const std::string&, std::uint64_t, std::size_t n) {
    total += n;
    return 0;
  };
  save_as<F>(p, sd);
  io::write_fault_hook() = nullptr;
  fs::remove_all(p);
  return total;
}

StateDict state(std::uint64_t seed, bool lone_tensor) {
  // 3 MiB of tensor data: several write(2) calls past the 1 MiB write buffer.
  if (lone_tensor) return StateDict(ckpt_test::random_tensor(DType::f32, {768, 1024}, seed));
  StateDict sd;
  sd["model"].set("0.weight", ckpt_test::random_tensor(DType::f32, {512, 1024}, seed));
  sd["model"].set("0.bias", ckpt_test::random_tensor(DType::bf16, {1024}, seed + 1));
  sd["optimizer"]["state"]["0"]["exp_avg"] = ckpt_test::random_tensor(DType::f32, {256, 1024}, seed + 2);
  sd["optimizer"]["lr"] = 1e-3;
  sd["epoch"] = std::int64_t(3);
  return sd;
}

template <class F>
void run_format(const ckpt_test::TempDir& dir, int& offsets_tried) {
  const std::string name(archive_traits<F>::name);
  const fs::path p = dir / ("f-" + name + ckpt_test::first_extension<F>());
  bool lone = false;
  const StateDict v1 = ckpt_test::save_first<F>(p, [](bool one) { return state(1, one); }, lone);
  const StateDict v2 = state(2, lone);
  const auto before = ckpt_test::snapshot(p);
  const auto listing = dir.list();
  const fs::path scratch = dir / ("scratch-" + name + ckpt_test::first_extension<F>());
  const std::uint64_t total = bytes_written<F>(scratch, v2);
  REQUIRE(total > (std::uint64_t{3} << 20));

  // Edges (first byte, header ends, the last bytes of footers and indexes) and seeded offsets.
  std::vector<std::uint64_t> ks = {0, 1, 7, 63, 64, 4095, 4096, (1u << 20) - 1, 1u << 20, total / 2, total - 33, total - 8, total - 1};
  std::mt19937_64 rng(42);
  for (int i = 0; i < 24; ++i) ks.push_back(rng() % total);
  for (const std::uint64_t k : ks) {
    for (const int err : {ENOSPC, EIO}) {
      INFO(name << ": fault at byte " << k << " of " << total << ", errno " << err);
      FaultAt fault(k, err);
      try {
        save_as<F>(p, v2);
        FAIL("the save did not fail");
      } catch (const io_error& e) {
        CHECK(e.code() == err);
        CHECK(e.path().find(std::string(io::temp_marker)) != std::string::npos);  // names the file being written
        CHECK(std::string(e.what()).find(std::strerror(err)) != std::string::npos);
      }
      CHECK(fault.fired == 1);
      ++offsets_tried;
    }
    INFO(name << ": fault at byte " << k);
    CHECK(dir.list() == listing);  // no temporary left, nothing new
    CHECK(ckpt_test::snapshot(p) == before);  // the previous checkpoint's bytes are untouched
  }
  // The previous checkpoint still loads to its values (and verifies, where the format can).
  const StateDict back = load_as<F>(p);
  std::map<std::string, const Tensor*> got;
  for (const auto& [path, leaf] : back.flatten())
    if (leaf->is_tensor()) got[path.joined()] = &leaf->tensor();
  std::size_t compared = 0;
  for (const auto& [path, leaf] : v1.flatten()) {
    if (!leaf->is_tensor()) continue;
    INFO(name << ": " << path.str());
    const auto it = got.find(path.joined());
    REQUIRE(it != got.end());
    CHECK(*it->second == leaf->tensor());
    ++compared;
  }
  CHECK(compared == got.size());
  if constexpr (archive_traits<F>::caps.checksums) verify(p);

  // A first save that fails leaves nothing at all under the final name.
  const fs::path fresh = dir / ("new-" + name + ckpt_test::first_extension<F>());
  for (const std::uint64_t k : {std::uint64_t{0}, total / 3, total - 1}) {
    FaultAt fault(k, ENOSPC);
    CHECK_THROWS_AS(save_as<F>(fresh, v2), io_error);
    CHECK_FALSE(fs::exists(fresh));
    CHECK(dir.list() == listing);
  }
}

}  // namespace

TEST_CASE("a write failing at byte k: io_error, the previous checkpoint intact, no temporary left", "[reliability][faults]") {
  ckpt_test::TempDir dir;
  int tried = 0, formats = 0;
  detail::for_each_format([&]<class F>(F) {
    INFO(archive_traits<F>::name);
    run_format<F>(dir, tried);
    ++formats;
  });
  WARN(formats << " formats, " << tried << " faulted saves (offset x errno), 0 failures expected");
  CHECK(formats >= 7);
}
