// tools/verify.cpp — `ckpt verify FILE|DIR`: structure and every checksum of a checkpoint (for
// formats without checksums: every tensor is read and the tree validated), or of every
// checkpoint a manager directory's index lists — there also every file against the size and
// CRC-32 the manager recorded when it committed it, whatever the format (one this tool cannot
// read is checked by its digests alone). Exit 0 when all is good, 1 with the first bad entry
// otherwise, 2 when the input cannot be judged at all (missing, not a checkpoint).
#include <iostream>  // std::cout, std::cerr

#include <ckpt/manager_index.hpp>  // ManagerIndex

#include "cli.hpp"

namespace ckpt_cli {
namespace {

using ckpt::detail::is_content_error;  // damage, as opposed to an OS error or a newer format

bool is_builtin_format(const std::string& name) {
  try {
    ckpt::visit_format(name, [](auto) {});
    return true;
  } catch (const ckpt::unsupported_error&) {
    return false;
  }
}

struct FileReport {
  std::string format;
  bool checksums = false;
  std::size_t entries = 0, checked = 0;
  Json bad = Json::array();  // [{"key", "reason"}]
  bool ok() const { return bad.empty(); }
};

/// Verify one checkpoint. `lenient`: every ckpt::error counts as damage (inside a manager
/// directory a listed checkpoint that cannot be read is bad); else only content errors do and
/// the rest propagate (exit 2).
FileReport verify_one(const fs::path& path, const std::string& label, bool lenient, const ckpt::LoadOptions& opts) {
  FileReport r;
  auto judge = [&](const std::exception& x, const std::string& key) {
    if (!lenient && !is_content_error(x)) throw;
    r.bad.push_back(Json{{"key", key}, {"reason", one_line(x.what())}});
  };
  Opened o;
  try {
    r.format = detect_format(path);
    ckpt::LoadOptions lo = opts;
    lo.verify = true;
    o = open_as(path, r.format, lo);
  } catch (const ckpt::error& x) {
    if (r.format.empty() && !lenient) throw;  // not a checkpoint we know: cannot judge
    judge(x, x.key());
    return r;
  }
  r.checksums = o.caps.checksums;
  r.entries = o.entries.size();
  std::uint64_t total = 0;
  for (const auto& e : o.entries) total += e.stored_nbytes;
  Progress progress(label, total);
  for (std::size_t i = 0; i < o.entries.size(); ++i) {
    try {
      o.check_entry(i);
      ++r.checked;
    } catch (const ckpt::error& x) {
      judge(x, o.tree_paths[i].str());
    }
    progress.advance(o.entries[i].stored_nbytes);
  }
  return r;
}

int verify_manager(const Args& a, const fs::path& dir) {
  Json list = Json::array();
  Json first_bad = nullptr;
  std::string first_line;
  std::vector<std::string> text;
  ckpt::ManagerIndex ix;
  try {
    ix = ckpt::ManagerIndex::read(dir);
  } catch (const ckpt::error& x) {
    if (!is_content_error(x)) throw;
    first_bad = Json{{"step", nullptr}, {"file", std::string(ckpt::ManagerIndex::file_name)}, {"key", ""}, {"reason", one_line(x.what())}};
    first_line = one_line(x.what());
    text.push_back("index: BAD: " + first_line);
  }
  for (const auto& e : ix.entries) {
    Json j{{"step", e.step}, {"file", e.path.filename().string()}, {"marked_corrupt", e.corrupt}};
    FileReport r;
    // "verified", "mismatch", "none recorded" (an index from before digests, or a checkpoint
    // adopted from the disk) or "not checked" (the checkpoint is gone)
    std::string digests = e.files ? "not checked" : "none recorded";
    // A format this build does not have (a user's backend) is judged by its digests alone.
    const bool readable = !e.files || is_builtin_format(e.format);
    std::error_code ec;
    if (!fs::exists(e.path, ec)) {
      r.bad.push_back(Json{{"key", ""}, {"reason", "listed in the index but missing on disk"}});
    } else {
      if (readable) r = verify_one(e.path, "verify step " + std::to_string(e.step), true, a.load_options());
      else r.format = e.format;
      if (e.files) {
        try {
          ckpt::detail::check_digests(e);
          digests = "verified";
        } catch (const ckpt::error& x) {
          digests = "mismatch";
          r.bad.push_back(Json{{"key", ""}, {"reason", one_line(x.what())}});
        }
      }
    }
    j["format"] = r.format.empty() ? Json(nullptr) : Json(r.format);
    j["ok"] = r.ok(), j["checksums"] = r.checksums, j["entries"] = r.entries, j["checked"] = r.checked, j["bad"] = r.bad;
    j["digests"] = digests, j["files"] = e.files ? Json(e.files->size()) : Json(nullptr), j["contents_read"] = readable;
    if (!r.ok() && first_bad.is_null()) {
      first_bad = Json{{"step", e.step}, {"file", e.path.filename().string()}, {"key", r.bad[0]["key"]}, {"reason", r.bad[0]["reason"]}};
      first_line = "step " + std::to_string(e.step) + " (" + e.path.string() + "): " + r.bad[0]["reason"].get<std::string>();
    }
    std::string how = !readable ? "format '" + e.format + "' is not built into this tool: its contents were not read"
                                : std::to_string(r.checked) + " tensors" + (r.checksums ? ", checksums verified" : ", read; no checksums in this format");
    how += e.files ? "; " + std::to_string(e.files->size()) + " file(s) match the size and CRC-32 recorded at commit"
                   : "; no digests recorded (index from before digests, or an adopted checkpoint): only the format's own checks";
    text.push_back("step " + std::to_string(e.step) + " " + e.path.filename().string() + ": " +
                   (r.ok() ? "ok (" + how + ")" : "BAD: " + r.bad[0]["reason"].get<std::string>()));
    list.push_back(std::move(j));
  }
  const bool ok = first_bad.is_null();
  if (a.json) {
    print_json(Json{{"command", "verify"}, {"path", dir.string()}, {"kind", "manager"}, {"ok", ok}, {"checkpoints", std::move(list)}, {"first_bad", first_bad}});
  } else {
    std::cout << dir.string() << ": checkpoint manager directory, " << ix.entries.size() << " checkpoints\n";
    for (const auto& t : text) std::cout << "  " << t << "\n";
    std::cout << (ok ? "ok\n" : "BAD\n");
  }
  if (!ok) std::cerr << "ckpt: verify failed: " << first_line << "\n";
  return ok ? exit_ok : exit_differs;
}

}  // namespace

int cmd_verify(const Args& a) {
  if (a.operands.size() != 1) throw usage_error("verify takes one checkpoint file or directory");
  const fs::path path = a.operands[0];
  if (is_manager_dir(path)) return verify_manager(a, path);
  const FileReport r = verify_one(path, "verify", false, a.load_options());
  if (a.json) {
    print_json(Json{{"command", "verify"}, {"path", path.string()}, {"kind", "checkpoint"}, {"format", r.format},
                    {"ok", r.ok()}, {"checksums", r.checksums}, {"entries", r.entries}, {"checked", r.checked},
                    {"bad", r.bad}, {"first_bad", r.ok() ? Json(nullptr) : r.bad[0]}});
  } else if (r.ok()) {
    std::cout << path.string() << ": ok (" << r.format << ", " << r.checked << " tensors"
              << (r.checksums ? ", checksums verified)\n" : ", read and structure checked; this format has no checksums)\n");
  } else {
    std::cout << path.string() << ": BAD (" << r.format << ")\n";
    for (const auto& b : r.bad) std::cout << "  " << (b["key"].get<std::string>().empty() ? "(file)" : b["key"].get<std::string>()) << ": " << b["reason"].get<std::string>() << "\n";
  }
  if (!r.ok()) std::cerr << r.bad[0]["reason"].get<std::string>() << "\n";
  return r.ok() ? exit_ok : exit_differs;
}

}  // namespace ckpt_cli
