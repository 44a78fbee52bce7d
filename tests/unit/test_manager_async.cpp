// Unit tests for CheckpointManager's async saves: the bytes equal a sync save of the same
// state even when the caller mutates it right after save() returns; the staging budget holds
// (staged bytes counted, a save past it waits, a state larger than the budget is written
// synchronously); a second save waits its turn; background errors are rethrown; pending
// saves are committed by the destructor. The background writer is held at a gate (the write
// hook) so every ordering is forced, never timed.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "manager_fixture.hpp"

using namespace ckpt;
using Steps = std::set<std::int64_t>;

namespace {
struct Big {
  Tensor w = Tensor(DType::f32, {1 << 18});  // 1 MiB
  std::int64_t step = 0;
};
CKPT_FIELDS(Big, w, step)

struct Large {
  Tensor w;
};
CKPT_FIELDS(Large, w)

void set_all(Big& b, float v) {
  for (auto& x : b.w.mutable_values<float>()) x = v;
  b.step = static_cast<std::int64_t>(v);
}

/// Holds writes to paths containing `needle` until opened. Installs itself as the write hook.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  explicit Gate(std::string needle) {
    io::write_fault_hook() = [this, needle](const std::string& p, std::uint64_t, std::size_t) {
      if (p.find(needle) == std::string::npos) return 0;
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return open; });
      return 0;
    };
  }
  ~Gate() { io::write_fault_hook() = nullptr; }  // callers wait_until_finished() first
  void release() {
    {
      std::lock_guard lk(mu);
      open = true;
    }
    cv.notify_all();
  }
};

/// Open `gate` once `mgr` has a save waiting for the staging budget.
std::thread release_when_waiting(const CheckpointManager& mgr, Gate& gate) {
  return std::thread([&] {
    while (mgr.staging_stats().waiting == 0) std::this_thread::yield();
    gate.release();
  });
}
}  // namespace

TEST_CASE("async: the bytes equal a sync save, although the state changes right after save()", "[manager][async]") {
  ckpt_test::TempDir a, b;
  Big state;
  Checkpoint ck_sync{{"big", state}}, ck_async{{"big", state}};
  auto so = mt::fast();
  so.max_to_keep = std::nullopt;
  auto ao = so;
  ao.async = true;
  ao.max_staging_bytes = std::uint64_t{8} << 20;
  CheckpointManager sync_mgr(a.path(), ck_sync, so), async_mgr(b.path(), ck_async, ao);
  for (int s = 1; s <= 4; ++s) {
    set_all(state, static_cast<float>(s));
    sync_mgr.save(s);
    async_mgr.save(s);
    set_all(state, -1.0f);  // the caller moves on at once
  }
  async_mgr.wait_until_finished();
  for (int s = 1; s <= 4; ++s) {
    const std::string f = "ckpt-" + std::to_string(s) + ".ckpt";
    INFO(f);
    CHECK((ckpt_test::read_bytes(a / f) == ckpt_test::read_bytes(b / f)));  // bool: no 1 MiB dump on failure
  }
  CHECK(async_mgr.staging_stats().async_saves == 4);
  CHECK(async_mgr.staging_stats().in_flight_bytes == 0);
  CHECK(mt::steps_indexed(async_mgr) == Steps{1, 2, 3, 4});
  // the next save reuses a spare staging buffer; the bytes are still those of a sync save
  const auto reused = async_mgr.staging_stats().reused_bytes;
  set_all(state, 5.0f);
  sync_mgr.save(5);
  async_mgr.save(5);
  set_all(state, -1.0f);
  async_mgr.wait_until_finished();
  CHECK(async_mgr.staging_stats().reused_bytes == reused + (std::uint64_t{1} << 20));
  CHECK((ckpt_test::read_bytes(a / "ckpt-5.ckpt") == ckpt_test::read_bytes(b / "ckpt-5.ckpt")));
}

TEST_CASE("async: staged bytes never exceed max_staging_bytes, a save past it waits", "[manager][async]") {
  ckpt_test::TempDir dir;
  Big state;
  Checkpoint ck{{"big", state}};
  auto o = mt::fast();
  o.async = true;
  o.max_staging_bytes = (std::uint64_t{5} << 20) / 2;  // 2.5 MiB: two 1 MiB states fit, three do not
  CheckpointManager mgr(dir.path(), ck, o);
  {
    Gate gate(".ckpt.tmp-");
    set_all(state, 1);
    mgr.save(1);  // staged; the writer blocks at the gate
    set_all(state, 2);
    mgr.save(2);  // staged: 2 MiB
    CHECK(mgr.staging_stats().staged_bytes == std::uint64_t{2} << 20);
    auto opener = release_when_waiting(mgr, gate);
    set_all(state, 3);
    mgr.save(3);  // would be 3 MiB: waits until the gate opens and save 1 is written
    opener.join();
    mgr.wait_until_finished();
  }
  const auto st = mgr.staging_stats();
  CHECK(st.peak_staged_bytes == std::uint64_t{2} << 20);
  CHECK(st.peak_staged_bytes <= *o.max_staging_bytes);
  CHECK(st.blocked_saves == 1);
  CHECK(st.async_saves == 3);
  CHECK(st.in_flight_bytes == 0);
  CHECK(st.staged_bytes <= *o.max_staging_bytes);        // spare buffers kept within the budget
  CHECK(st.reused_bytes == std::uint64_t{1} << 20);       // save 3 reused save 1's buffer
  Big back;
  Checkpoint ck2{{"big", back}};
  ck2.restore(dir / "ckpt-3.ckpt").assert_consumed();
  CHECK(back.step == 3);
  CHECK(back.w.values<float>()[100] == 3.0f);
}

TEST_CASE("async: a state larger than the budget is written synchronously, staging nothing", "[manager][async]") {
  ckpt_test::TempDir dir;
  Big state;
  set_all(state, 5);
  Checkpoint ck{{"big", state}};
  auto o = mt::fast();
  o.async = true;
  o.max_staging_bytes = std::uint64_t{1} << 19;  // 0.5 MiB < 1 MiB
  CheckpointManager mgr(dir.path(), ck, o);
  mgr.save(1);
  CHECK(std::filesystem::exists(dir / "ckpt-1.ckpt"));  // already committed when save returns
  const auto st = mgr.staging_stats();
  CHECK(st.sync_saves == 1);
  CHECK(st.async_saves == 0);
  CHECK(st.peak_staged_bytes == 0);
}

TEST_CASE("async: without a byte budget, a second save waits for the first", "[manager][async]") {
  ckpt_test::TempDir dir;
  Big state;
  Checkpoint ck{{"big", state}};
  auto o = mt::fast();
  o.async = true;
  CheckpointManager mgr(dir.path(), ck, o);
  {
    Gate gate(".ckpt.tmp-");
    set_all(state, 1);
    mgr.save(1);
    CHECK_FALSE(mgr.should_save(1));  // pending saves count as saved
    auto opener = release_when_waiting(mgr, gate);
    set_all(state, 2);
    mgr.save(2);  // waits its turn
    opener.join();
    mgr.wait_until_finished();
  }
  CHECK(mgr.staging_stats().blocked_saves == 1);
  CHECK(mgr.staging_stats().peak_staged_bytes == std::uint64_t{1} << 20);
  CHECK(mt::steps_indexed(mgr) == Steps{1, 2});
}

TEST_CASE("async: a background error is rethrown by wait_until_finished or the next save", "[manager][async]") {
  ckpt_test::TempDir dir;
  Big state;
  Checkpoint ck{{"big", state}};
  auto o = mt::fast();
  o.async = true;
  CheckpointManager mgr(dir.path(), ck, o);
  io::write_fault_hook() = [](const std::string& p, std::uint64_t, std::size_t) { return p.find(".ckpt.tmp-") != std::string::npos ? ENOSPC : 0; };
  mgr.save(1);
  CHECK_THROWS_AS(mgr.wait_until_finished(), io_error);
  CHECK(ck.save_counter() == 0);  // the failed save did not count, as for a sync one
  CHECK_NOTHROW(mgr.wait_until_finished());  // reported once
  CHECK(ck.save_counter() == 0);
  mgr.save(2);
  while (mgr.staging_stats().in_flight_bytes != 0) std::this_thread::yield();  // save 2 has failed
  try {
    mgr.save(3);
    FAIL("background error not rethrown");
  } catch (const io_error& e) {
    CHECK(e.code() == ENOSPC);
    CHECK(e.path().find("ckpt-2.ckpt") != std::string::npos);
  }
  CHECK(ck.save_counter() == 0);
  io::write_fault_hook() = nullptr;
  mgr.save(3);
  mgr.wait_until_finished();
  CHECK(ck.save_counter() == 1);
  CHECK(ckpt::load(dir / "ckpt-3.ckpt").at("save_counter").get<std::int64_t>() == 1);
  CHECK(mt::steps_on_disk(dir.path()) == Steps{3});
  CHECK(dir.list() == std::vector<std::string>{"checkpoints.json", "checkpoints.lock", "ckpt-3.ckpt"});
}

TEST_CASE("async: background saves record the digests of the bytes written, a changed byte falls back", "[manager][async][digest]") {
  for (const Backend& format : {Backend("json"), Backend::of<rawdir::format>()}) {
    INFO(format.name);
    ckpt_test::TempDir dir;
    Big state;
    Checkpoint ck{{"big", state}};
    auto o = mt::fast();
    o.format = format;
    o.async = true;
    o.max_to_keep = std::nullopt;
    {
      CheckpointManager mgr(dir.path(), ck, o);
      for (int s = 1; s <= 3; ++s) {
        set_all(state, static_cast<float>(s));
        mgr.save(s);
        set_all(state, -1);  // the staged copy is written and digested, not this
      }
      mgr.wait_until_finished();
      for (const auto& c : mgr.checkpoints()) {
        REQUIRE(c.files);
        for (const auto& d : *c.files) {
          const auto bytes = io::read_file(d.name == "." ? c.path : c.path / d.name);
          CHECK(d.size == bytes.size());
          CHECK(d.crc32 == detail::crc32(bytes));
        }
      }
    }
    // Change one byte of step 3's tensor data (its first float, 3.0f, or that float's base64).
    const auto newest = dir / ("ckpt-3" + format.extension);
    const auto file = format.directory ? newest / "t0.bin" : newest;
    auto b = ckpt_test::read_bytes(file);
    const std::string text(b.begin(), b.end());
    const auto at = format.directory ? std::size_t{2} : text.find("\"data\": \"") + 12;
    b[at] = b[at] == 'A' ? 'B' : 'A';
    ckpt_test::write_bytes(file, b);
    std::vector<std::int64_t> failed;
    o.on_verify_failure = [&](const VerifyFailure& f) { failed.push_back(f.step); };
    CheckpointManager mgr(dir.path(), ck, o);
    CHECK(mgr.restore_or_initialize() == 2);
    CHECK(failed == std::vector<std::int64_t>{3});
    CHECK(state.step == 2);
    CHECK(state.w.values<float>()[0] == 2.0f);
  }
}

TEST_CASE("async: the destructor commits pending saves", "[manager][async]") {
  ckpt_test::TempDir dir;
  Big state;
  set_all(state, 4);
  Checkpoint ck{{"big", state}};
  auto o = mt::fast();
  o.async = true;
  {
    CheckpointManager mgr(dir.path(), ck, o);
    mgr.save(4);
  }
  CheckpointManager mgr(dir.path(), ck, mt::fast());
  CHECK(mgr.latest_step() == 4);
  set_all(state, 0);
  CHECK(mgr.restore_or_initialize() == 4);
  CHECK(state.step == 4);
}

TEST_CASE("async: tensors viewing a read-only mapping are shared, not staged", "[manager][async]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["w"] = ckpt_test::random_tensor(DType::f32, {1 << 16}, 7);
  save(dir / "src.ckpt", sd);
  LoadOptions mm;
  mm.mmap = true;
  StateDict mapped = load(dir / "src.ckpt", mm);
  REQUIRE(mapped.at("w").tensor().is_view());
  Checkpoint ck{{"frozen", mapped}};
  auto o = mt::fast();
  o.async = true;
  CheckpointManager mgr(dir.path() / "m", ck, o);
  mgr.save(1);
  mgr.wait_until_finished();
  CHECK(mgr.staging_stats().peak_staged_bytes == 0);
  CHECK(load(dir / "m" / "ckpt-1.ckpt").at("frozen") == sd);
}

TEST_CASE("async: a tensor large enough to be staged by two threads arrives intact", "[manager][async]") {
  // Tensors of Lane::min_split_bytes and more are copied half by the caller, half by the lane.
  ckpt_test::TempDir d;
  const std::int64_t n = (std::int64_t{9} << 20) + 4097;
  Large state{ckpt_test::random_tensor(DType::u8, {n}, 21)};
  const Tensor want = ckpt_test::random_tensor(DType::u8, {n}, 21);
  Checkpoint ck{{"large", state}};
  auto o = mt::fast();
  o.async = true;
  {
    CheckpointManager mgr(d.path(), ck, o);
    mgr.save(1);
    std::memset(state.w.mutable_data(), 0, state.w.nbytes());  // the caller moves on at once
    mgr.wait_until_finished();
    CHECK(mgr.staging_stats().async_saves == 1);
  }
  const StateDict back = load(d / "ckpt-1.ckpt");
  const auto got = back.at(KeyPath{"large", "w"}).tensor().bytes();
  REQUIRE(got.size() == want.nbytes());
  CHECK(std::equal(got.begin(), got.end(), want.bytes().begin()));
}
