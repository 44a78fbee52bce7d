// Unit tests for the integrity digests CheckpointManager records: every backend — built-in or
// user-written, single file or directory — falls back past a newest checkpoint with one byte
// changed, a truncated file or a deleted file exactly as the native format does (the fallback
// matrix); the digests of built-in backends are taken as the bytes are written (no read-back);
// a backend writing by other means is read back once; restore(step) checks them too; an index
// written before digests existed still loads.
#include <fstream>

#include "manager_fixture.hpp"

using namespace ckpt;
namespace fs = std::filesystem;

namespace {
/// Every backend the manager can use: all built-in ones that hold a Checkpoint's tree (npy
/// holds one lone tensor, never a Checkpoint with its save_counter) and a directory backend
/// from outside the library.
std::vector<std::pair<std::string, Backend>> all_backends() {
  return {{"native", "native"},   {"json", "json"}, {"npz", "npz"}, {"safetensors", "safetensors"},
          {"safetensors-sharded", "safetensors-sharded"}, {"pt", "pt"}, {"rawdir", Backend::of<rawdir::format>()}};
}

ManagerOptions with(const Backend& b) {
  auto o = mt::fast();
  o.format = b;
  o.max_to_keep = std::nullopt;
  return o;
}

/// Save steps 1..n with the model filled with the step number.
void populate(const fs::path& dir, int n, const ManagerOptions& o) {
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir, ck, o);
  for (int s = 1; s <= n; ++s) {
    mt::fill(m, static_cast<float>(s));
    mgr.save(s);
  }
}

/// The regular files of a checkpoint (itself, or those inside its directory).
std::vector<fs::path> files_of(const fs::path& ckpt_path) {
  if (!fs::is_directory(ckpt_path)) return {ckpt_path};
  std::vector<fs::path> v;
  for (const auto& e : fs::recursive_directory_iterator(ckpt_path))
    if (e.is_regular_file()) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

/// Where the model's weights of step `step` are stored: the file and the offset of a byte
/// inside them (raw little-endian floats, or their base64 in JSON).
std::pair<fs::path, std::size_t> weight_bytes(const fs::path& ckpt_path, int step) {
  mt::Model m;
  mt::fill(m, static_cast<float>(step));
  const std::string raw(reinterpret_cast<const char*>(m.w.data()), 16);
  const std::string b64 = detail::base64_encode(std::as_bytes(std::span(m.w))).substr(0, 16);
  for (const auto& f : files_of(ckpt_path)) {
    const auto bytes = ckpt_test::read_bytes(f);
    const std::string text(bytes.begin(), bytes.end());
    if (auto at = text.find(raw); at != std::string::npos) return {f, at + 5};
    if (auto at = text.find(b64); at != std::string::npos) return {f, at + 5};
  }
  FAIL("the weights of step " << step << " are not in " << ckpt_path);
  return {};
}

enum class Damage { flip, truncate, remove };
const char* name(Damage d) { return d == Damage::flip ? "flip a byte" : d == Damage::truncate ? "truncate" : "delete a file"; }

/// Damage the checkpoint at `p` (step `step`) in the file holding its weights; returns that file.
fs::path damage(const fs::path& p, int step, Damage d) {
  const auto [file, at] = weight_bytes(p, step);
  auto b = ckpt_test::read_bytes(file);
  switch (d) {
    case Damage::flip:  // one changed byte that still decodes (base64 stays base64)
      b[at] = b[at] == 'A' ? 'B' : (std::isalnum(static_cast<unsigned char>(b[at])) ? 'A' : static_cast<char>(b[at] ^ 0x10));
      ckpt_test::write_bytes(file, b);
      break;
    case Damage::truncate:  // the last byte: for JSON only the final newline
      b.pop_back();
      ckpt_test::write_bytes(file, b);
      break;
    case Damage::remove:
      fs::remove(file);
      break;
  }
  return file;
}
}  // namespace

TEST_CASE("digests: every backend x (flip, truncate, delete) falls back to the previous checkpoint", "[manager][digest]") {
  for (const auto& [bname, backend] : all_backends()) {
    for (const Damage d : {Damage::flip, Damage::truncate, Damage::remove}) {
      INFO(bname << ": " << name(d));
      ckpt_test::TempDir dir;
      const auto o = with(backend);
      populate(dir.path(), 3, o);
      mt::Model probe;
      Checkpoint probe_ck{{"model", probe}};
      const fs::path newest = [&] {
        CheckpointManager peek(dir.path(), probe_ck, o);
        return *peek.latest();
      }();
      const fs::path hit = damage(newest, 3, d);

      std::vector<VerifyFailure> failures;
      auto ro = o;
      ro.on_verify_failure = [&](const VerifyFailure& f) { failures.push_back(f); };
      mt::WarningCapture w;
      mt::Model m;
      Checkpoint ck{{"model", m}};
      CheckpointManager mgr(dir.path(), ck, ro);
      CHECK(mgr.restore_or_initialize() == 2);
      CHECK(m.seen == 2);
      CHECK(m.w[5] == 7.0f);
      if (d == Damage::remove && !backend.directory) {
        // The checkpoint is gone as a whole: dropped from the index on open, as native does.
        CHECK(failures.empty());
        CHECK(w.any_contains("not on disk"));
        CHECK(mgr.latest_step() == 2);
      } else {
        CHECK(failures.size() == 1);  // (not REQUIRE: the rest of the matrix still runs)
        for (const auto& f : failures) {
          CHECK(f.step == 3);
          CHECK(f.path == newest);
          CHECK(f.marked_corrupt);
          CHECK(f.reason.find(hit.string()) != std::string::npos);
        }
        CHECK(mgr.checkpoints().back().corrupt);
        CHECK(mgr.latest_step() == 2);
      }
    }
  }
}

TEST_CASE("digests: the index records size and CRC-32 of every file, taken as it was written", "[manager][digest]") {
  for (const auto& [bname, backend] : all_backends()) {
    INFO(bname);
    ckpt_test::TempDir dir;
    populate(dir.path(), 2, with(backend));
    mt::Model m;
    Checkpoint ck{{"model", m}};
    CheckpointManager mgr(dir.path(), ck, with(backend));
    for (const auto& c : mgr.checkpoints()) {
      REQUIRE(c.files);
      std::map<std::string, io::FileDigest> recorded;
      for (const auto& d : *c.files) recorded[d.name] = d;
      const auto files = files_of(c.path);
      CHECK(recorded.size() == files.size());
      for (const auto& f : files) {
        const std::string n = backend.directory ? f.lexically_relative(c.path).generic_string() : ".";
        INFO(n);
        REQUIRE(recorded.count(n));
        const auto bytes = io::read_file(f);
        CHECK(recorded[n].size == bytes.size());
        CHECK(recorded[n].crc32 == detail::crc32(bytes));
      }
    }
    // A save under a DigestRecorder (what the manager does) sees every file the backend writes:
    // nothing has to be read back.
    mt::fill(m, 9);
    const auto p = dir / ("direct" + backend.extension);
    std::map<std::string, io::FileDigest> written;
    {
      io::DigestRecorder rec(p);
      backend.save(p, ck.state_dict(), with(backend).save_options);
      written = rec.written();
    }
    const auto files = files_of(p);
    CHECK(written.size() == files.size());
    for (const auto& f : files) {
      const std::string n = backend.directory ? f.lexically_relative(p).generic_string() : ".";
      INFO(n);
      REQUIRE(written.count(n));
      const auto bytes = io::read_file(f);
      CHECK(written[n].size == bytes.size());
      CHECK(written[n].crc32 == detail::crc32(bytes));
    }
  }
}

TEST_CASE("digests: a backend that writes other than through io::File is read back once and falls back the same", "[manager][digest]") {
  // A user's backend that writes its bytes with std::filesystem::copy_file: no DigestRecorder sees them.
  Backend b = "json";
  b.name = "copied-json";
  b.save = [](const fs::path& p, const StateDict& sd, const SaveOptions& so) {
    const fs::path staged = p.string() + ".staged";
    save_as<json_format>(staged, sd, so);
    fs::copy_file(staged, p);
    fs::remove(staged);
  };
  ckpt_test::TempDir dir;
  {
    io::DigestRecorder rec(dir / "x.json");
    mt::Model m;
    Checkpoint ck{{"model", m}};
    b.save(dir / "x.json", ck.state_dict(), {});
    CHECK(rec.written().empty());
  }
  populate(dir.path(), 3, with(b));
  const auto newest = dir / "ckpt-3.json";
  damage(newest, 3, Damage::flip);
  std::vector<VerifyFailure> failures;
  auto o = with(b);
  o.on_verify_failure = [&](const VerifyFailure& f) { failures.push_back(f); };
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, o);
  REQUIRE(mgr.checkpoints().back().files);
  CHECK(mgr.checkpoints().back().files->at(0).name == ".");
  CHECK(mgr.restore_or_initialize() == 2);
  CHECK(m.seen == 2);
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].reason.find("checksum mismatch") != std::string::npos);
  CHECK(failures[0].reason.find(newest.string()) != std::string::npos);
}

TEST_CASE("digests: restore(step) checks them too, and changes no object when they fail", "[manager][digest]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 2, with("json"));
  damage(dir / "ckpt-1.json", 1, Damage::flip);
  mt::Model m;
  mt::fill(m, 42);
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, with("json"));
  try {
    mgr.restore(1);
    FAIL("restored a checkpoint whose bytes changed");
  } catch (const corrupt_error& e) {
    CHECK(e.path() == (dir / "ckpt-1.json").string());
    CHECK(std::string(e.what()).find("checksum mismatch") != std::string::npos);
  }
  CHECK(m.seen == 42);
  mgr.restore(2).assert_consumed();
  CHECK(m.seen == 2);
}

TEST_CASE("digests: an index written before digests still loads, the format's own checks still apply", "[manager][digest]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 3, with("native"));
  {  // the index as versions without digests wrote it
    const auto ip = dir / std::string(ManagerIndex::file_name);
    const auto bytes = io::read_file(ip);
    auto doc = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    for (auto& c : doc.at("checkpoints")) {
      REQUIRE(c.contains("files"));
      c.erase("files");
    }
    const std::string text = doc.dump(1);
    ckpt_test::write_bytes(ip, std::vector<char>(text.begin(), text.end()));
  }
  damage(dir / "ckpt-3.ckpt", 3, Damage::flip);  // native's own CRC-32 still catches this
  std::vector<VerifyFailure> failures;
  auto o = with("native");
  o.on_verify_failure = [&](const VerifyFailure& f) { failures.push_back(f); };
  mt::Model m;
  Checkpoint ck{{"model", m}};
  CheckpointManager mgr(dir.path(), ck, o);
  for (const auto& c : mgr.checkpoints()) CHECK_FALSE(c.files);
  CHECK(mgr.restore_or_initialize() == 2);
  REQUIRE(failures.size() == 1);
  CHECK(failures[0].reason.find("checksum mismatch") != std::string::npos);
  CHECK(m.seen == 2);
  // New saves record digests; the old entries keep none (and are not rewritten with made-up ones).
  mgr.save(3);
  mgr.save(4);
  const auto cs = mgr.checkpoints();
  REQUIRE(cs.size() == 4);
  CHECK_FALSE(cs[0].files);
  CHECK_FALSE(cs[1].files);
  CHECK(cs[2].files);
  CHECK(cs[3].files);
}

TEST_CASE("digests: a malformed digest in the index is a format_error naming the index", "[manager][digest]") {
  ckpt_test::TempDir dir;
  populate(dir.path(), 1, with("json"));
  const auto ip = dir / std::string(ManagerIndex::file_name);
  for (const char* bad : {R"({"name": "../escape", "size": 1, "crc32": 1})", R"({"name": ".", "size": -1, "crc32": 1})",
                          R"({"name": ".", "size": 1, "crc32": 4294967296})", R"({"name": "/etc/passwd", "size": 1, "crc32": 1})"}) {
    INFO(bad);
    const auto bytes = io::read_file(ip);
    auto doc = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    doc["checkpoints"][0]["files"] = nlohmann::json::array({nlohmann::json::parse(bad)});
    const std::string text = doc.dump(1);
    ckpt_test::TempDir copy;
    ckpt_test::write_bytes(copy / std::string(ManagerIndex::file_name), std::vector<char>(text.begin(), text.end()));
    try {
      (void)ManagerIndex::read(copy.path());
      FAIL("accepted " << bad);
    } catch (const format_error& e) {
      CHECK(e.path() == (copy / std::string(ManagerIndex::file_name)).string());
      CHECK(std::string(e.what()).find("invalid file digest") != std::string::npos);
    }
  }
}
