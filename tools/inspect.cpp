// tools/inspect.cpp — `ckpt ls` (entries and metadata of a checkpoint; the checkpoints of a
// manager directory), `ckpt info` (totals and format facts) and `ckpt formats`.
#include <cmath>     // isfinite
#include <ctime>     // gmtime_r, strftime
#include <iostream>  // std::cout
#include <map>       // dtype / codec counts

#include <ckpt/manager_index.hpp>  // ManagerIndex

#include "cli.hpp"

namespace ckpt_cli {
namespace {

std::string iso_time(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Json keys_json(const ckpt::KeyPath& p) {
  Json a = Json::array();
  for (const auto& k : p.keys()) a.push_back(k);
  return a;
}

int ls_manager(const Args& a, const fs::path& dir) {
  const auto ix = ckpt::ManagerIndex::read(dir);
  std::optional<std::size_t> latest;
  for (std::size_t i = ix.entries.size(); i-- > 0;)
    if (!ix.entries[i].corrupt) {
      latest = i;
      break;
    }
  if (a.json) {
    Json list = Json::array();
    for (std::size_t i = 0; i < ix.entries.size(); ++i) {
      const auto& e = ix.entries[i];
      Json m = Json::object();
      for (const auto& [k, v] : e.metrics) m[k] = std::isfinite(v) ? Json(v) : Json(nullptr);
      std::error_code ec;
      list.push_back(Json{{"step", e.step}, {"file", e.path.filename().string()}, {"path", e.path.string()},
                          {"exists", fs::exists(e.path, ec)}, {"time", iso_time(e.time)},
                          {"time_unix", std::chrono::duration<double>(e.time.time_since_epoch()).count()},
                          {"metrics", std::move(m)}, {"format", e.format}, {"preserved", e.preserved},
                          {"corrupt", e.corrupt}, {"latest", latest && *latest == i}});
    }
    print_json(Json{{"command", "ls"}, {"path", dir.string()}, {"kind", "manager"},
                    {"latest_step", latest ? Json(ix.entries[*latest].step) : Json(nullptr)},
                    {"latest", latest ? Json(ix.entries[*latest].path.filename().string()) : Json(nullptr)},
                    {"checkpoints", std::move(list)}});
    return exit_ok;
  }
  std::cout << dir.string() << ": checkpoint manager directory, " << ix.entries.size() << " checkpoint"
            << (ix.entries.size() == 1 ? "" : "s");
  if (latest) std::cout << ", latest step " << ix.entries[*latest].step;
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows{{"", "step", "time (UTC)", "file", "format", "metrics"}};
  for (std::size_t i = 0; i < ix.entries.size(); ++i) {
    const auto& e = ix.entries[i];
    std::string m;
    for (const auto& [k, v] : e.metrics) m += (m.empty() ? "" : " ") + k + "=" + fmt_double(v);
    if (e.preserved) m += (m.empty() ? "" : " ") + std::string("[preserved]");
    if (e.corrupt) m += (m.empty() ? "" : " ") + std::string("[corrupt]");
    std::error_code ec;
    if (!fs::exists(e.path, ec)) m += (m.empty() ? "" : " ") + std::string("[missing]");
    rows.push_back({latest && *latest == i ? "*" : "", std::to_string(e.step), iso_time(e.time),
                    e.path.filename().string(), e.format, m});
  }
  std::cout << table(rows) << "(* = latest)\n";
  return exit_ok;
}

}  // namespace

int cmd_ls(const Args& a) {
  if (a.operands.size() != 1) throw usage_error("ls takes one checkpoint file or directory");
  const fs::path path = a.operands[0];
  if (is_manager_dir(path)) return ls_manager(a, path);
  const Opened o = open_checkpoint(path, a.load_options());
  const auto leaves = o.leaves();
  const auto objects = objects_of(o);
  if (a.json) {
    Json entries = Json::array();
    for (std::size_t i = 0; i < o.entries.size(); ++i) {
      const auto& e = o.entries[i];
      entries.push_back(Json{{"key", o.tree_paths[i].str()}, {"keys", keys_json(o.tree_paths[i])},
                             {"stored_key", e.path.str()}, {"dtype", std::string(ckpt::name(e.dtype))},
                             {"shape", shape_json(e.shape)}, {"nbytes", e.nbytes}, {"stored_nbytes", e.stored_nbytes},
                             {"codec", e.codec}});
    }
    Json values = Json::array();
    for (const auto& l : leaves)
      if (!l.is_tensor) values.push_back(Json{{"key", l.path.str()}, {"keys", keys_json(l.path)}, {"value", Json(*l.value)}});
    Json objs = Json::array();
    for (const auto& ob : objects)
      objs.push_back(Json{{"key", ob.path.str()}, {"keys", keys_json(ob.path)}, {"class", ob.cls}, {"summary", ob.summary}});
    print_json(Json{{"command", "ls"}, {"path", o.path}, {"kind", "checkpoint"}, {"format", o.format},
                    {"entries", std::move(entries)}, {"values", std::move(values)}, {"objects", std::move(objs)},
                    {"tree", o.flat ? Json(nullptr) : Json(o.tree)}});
    return exit_ok;
  }
  std::uint64_t bytes = 0;
  for (const auto& e : o.entries) bytes += e.nbytes;
  std::size_t nvalues = 0, shown = 0;  // values inside objects are shown with their object
  for (const auto& l : leaves)
    if (!l.is_tensor) {
      ++nvalues;
      shown += !under_object(l.path, objects);
    }
  std::cout << o.path << ": " << o.format << ", " << o.entries.size() << " tensor" << (o.entries.size() == 1 ? "" : "s")
            << " (" << human_bytes(bytes) << "), " << nvalues << " value" << (nvalues == 1 ? "" : "s");
  if (!objects.empty()) std::cout << ", " << objects.size() << " object" << (objects.size() == 1 ? "" : "s");
  std::cout << "\n";
  if (!o.entries.empty()) {
    std::vector<std::vector<std::string>> rows{{"key", "dtype", "shape", "bytes", "stored"}};
    for (std::size_t i = 0; i < o.entries.size(); ++i) {
      const auto& e = o.entries[i];
      const std::string key = o.display(o.tree_paths[i]);
      rows.push_back({key, std::string(ckpt::name(e.dtype)), ckpt::shape_string(e.shape), std::to_string(e.nbytes),
                      e.codec == "raw" ? "" : std::to_string(e.stored_nbytes) + " " + e.codec});
    }
    std::cout << table(rows);
  }
  if (!objects.empty()) {
    std::cout << "objects:\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& ob : objects) rows.push_back({o.display(ob.path), ob.cls, ob.summary});
    std::cout << table(rows);
  }
  if (shown) {
    std::cout << "metadata:\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& l : leaves)
      if (!l.is_tensor && !under_object(l.path, objects)) rows.push_back({o.display(l.path), "=", short_value(*l.value)});
    std::cout << table(rows);
  }
  return exit_ok;
}

int cmd_info(const Args& a) {
  if (a.operands.size() != 1) throw usage_error("info takes one checkpoint");
  const Opened o = open_checkpoint(a.operands[0], a.load_options());
  std::uint64_t bytes = 0, stored = 0, numel = 0;
  std::map<std::string, std::size_t> dtypes, codecs;
  for (const auto& e : o.entries) {
    bytes += e.nbytes;
    stored += e.stored_nbytes;
    numel += e.nbytes / ckpt::element_size(e.dtype);
    ++dtypes[std::string(ckpt::name(e.dtype))];
    ++codecs[e.codec];
  }
  std::size_t nvalues = 0;
  for (const auto& l : o.leaves()) nvalues += !l.is_tensor;
  const auto objects = objects_of(o);
  std::map<std::string, std::size_t> classes;
  for (const auto& ob : objects) ++classes[ob.cls];
  if (a.json) {
    Json dj = Json::object(), cj = Json::object(), oj = Json::object();
    for (const auto& [k, v] : dtypes) dj[k] = v;
    for (const auto& [k, v] : codecs) cj[k] = v;
    for (const auto& [k, v] : classes) oj[k] = v;
    print_json(Json{{"command", "info"}, {"path", o.path}, {"format", o.format},
                    {"format_version", o.format_version ? Json(*o.format_version) : Json(nullptr)},
                    {"size_on_disk", o.size_on_disk}, {"tensors", o.entries.size()}, {"values", nvalues},
                    {"elements", numel}, {"tensor_bytes", bytes}, {"stored_bytes", stored}, {"dtypes", std::move(dj)},
                    {"codecs", std::move(cj)}, {"objects", objects.size()}, {"classes", std::move(oj)},
                    {"alignment", o.alignment ? Json(*o.alignment) : Json(nullptr)},
                    {"tree", !o.flat}, {"caps", caps_json(o.caps)}});
    return exit_ok;
  }
  auto counts = [](const std::map<std::string, std::size_t>& m) {
    std::string s;
    for (const auto& [k, v] : m) s += (s.empty() ? "" : ", ") + k + " x" + std::to_string(v);
    return s.empty() ? std::string("-") : s;
  };
  std::vector<std::vector<std::string>> rows{
      {"format:", o.format + (o.format_version ? " (version " + std::to_string(*o.format_version) + ")" : "")},
      {"on disk:", std::to_string(o.size_on_disk) + " bytes (" + human_bytes(o.size_on_disk) + ")"},
      {"tensors:", std::to_string(o.entries.size()) + ", " + std::to_string(numel) + " elements, " + std::to_string(bytes) + " bytes (" + human_bytes(bytes) + ")"},
      {"stored:", std::to_string(stored) + " bytes" + (bytes ? " (" + fmt_double(100.0 * static_cast<double>(stored) / static_cast<double>(bytes)) + "% of the tensor bytes)" : "")},
      {"dtypes:", counts(dtypes)},
      {"codecs:", counts(codecs)},
      {"alignment:", o.alignment ? std::to_string(*o.alignment) + " bytes" : "-"},
      {"values:", std::to_string(nvalues)},
      {"objects:", objects.empty() ? std::string("-") : std::to_string(objects.size()) + " (" + counts(classes) + ")"},
      {"tree:", o.flat ? "none (flat: entries by key path)" : "stored"},
  };
  std::cout << o.path << "\n" << table(rows);
  return exit_ok;
}

int cmd_formats(const Args& a) {
  if (!a.operands.empty()) throw usage_error("formats takes no operands");
  const Json list = formats_json();
  if (a.json) {
    print_json(Json{{"command", "formats"}, {"formats", list}});
    return exit_ok;
  }
  std::vector<std::vector<std::string>> rows{{"name", "extensions", "capabilities"}};
  for (const auto& f : list) {
    std::string ext, caps;
    for (const auto& e : f["extensions"]) ext += (ext.empty() ? "" : " ") + e.get<std::string>();
    for (const auto& [k, v] : f["caps"].items())
      if (v.get<bool>()) caps += (caps.empty() ? "" : " ") + k;
    rows.push_back({f["name"].get<std::string>(), ext.empty() ? "-" : ext, caps});
  }
  std::cout << table(rows, "");
  return exit_ok;
}

}  // namespace ckpt_cli
