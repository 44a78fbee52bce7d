// tools/convert.cpp — `ckpt convert IN OUT [--format F] [--codec C]`: stream a checkpoint from
// any backend into any other, one tensor at a time (bytes passed through unchanged; a backend
// that buffers until commit keeps views, so then the tensors stay alive until commit). The
// output appears only when complete (the backends write atomically). A target that stores no
// metadata tree gets the tensors only; what it cannot hold is named on one stderr line.
#include <iostream>  // std::cout, std::cerr

#include "cli.hpp"

namespace ckpt_cli {
namespace {

struct Copier {
  Copier(Sink& s, const Opened& o, Progress& p) : sink(s), src(o), progress(p), keep_metadata(s.caps.metadata_tree), hold(!s.caps.streaming_write) {}
  Sink& sink;
  const Opened& src;
  Progress& progress;
  bool keep_metadata;
  bool hold;                       ///< the writer may keep views until commit(): keep the tensors alive
  std::vector<ckpt::Tensor> held;
  std::size_t tensors = 0, values = 0;
  std::uint64_t bytes = 0;
  std::vector<std::string> dropped_values, dropped_containers;

  void begin_group(const ckpt::KeyPath& p, ckpt::Container c) {
    if (!keep_metadata && c != ckpt::Container::dict)
      dropped_containers.push_back((p.empty() ? std::string("(root)") : p.str()) + " (" + std::string(ckpt::container_name(c)) + ")");
    sink.begin_group(p, c);
  }
  void end_group(const ckpt::KeyPath& p) { sink.end_group(p); }
  void tensor(const ckpt::KeyPath& p, std::size_t i) {
    const ckpt::Tensor t = src.read_tensor(i);
    sink.write_tensor(p, t.view());
    if (hold) held.push_back(t);
    ++tensors;
    bytes += t.nbytes();
    progress.advance(t.nbytes());
  }
  void value(const ckpt::KeyPath& p, const ckpt::Value& v) {
    if (!keep_metadata) {
      dropped_values.push_back(p.empty() ? std::string("(root)") : p.str());
      return;
    }
    sink.write_value(p, v);
    ++values;
  }
};

std::string some(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < 5; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > 5) s += ", and " + std::to_string(v.size() - 5) + " more";
  return s;
}

Json json_list(const std::vector<std::string>& v) {
  Json a = Json::array();
  for (const auto& s : v) a.push_back(s);
  return a;
}

}  // namespace

int cmd_convert(const Args& a) {
  if (a.operands.size() != 2) throw usage_error("convert takes an input and an output path");
  ckpt::LoadOptions lo = a.load_options();  // map where the backend can (tensors a buffering writer holds cost no copy); verify anyway
  lo.mmap = true;
  lo.verify = true;
  const Opened src = open_checkpoint(a.operands[0], lo);
  ckpt::SaveOptions so;
  so.format = a.format;
  if (!a.codec.empty()) so.codec = a.codec;
  Sink sink = open_sink(a.operands[1], so);
  std::uint64_t total = 0;
  for (const auto& l : src.leaves())
    if (l.is_tensor) total += src.entries[l.index].nbytes;
  Progress progress("convert", total);
  Copier c(sink, src, progress);
  walk_tree(src.tree, c);
  sink.commit();
  const std::vector<std::string> dropped_objects = sink.dropped_objects();
  if (!dropped_objects.empty())
    std::cerr << "ckpt: note: " << sink.format << " cannot write " << dropped_objects.size() << " object" << (dropped_objects.size() == 1 ? "" : "s")
              << " back as " << (dropped_objects.size() == 1 ? "itself" : "themselves") << "; dropped the class, wrote the fields as a plain dict: "
              << some(dropped_objects) << "\n";
  if (!c.dropped_values.empty() || !c.dropped_containers.empty()) {
    std::string what;
    if (!c.dropped_values.empty())
      what += std::to_string(c.dropped_values.size()) + " value" + (c.dropped_values.size() == 1 ? "" : "s") + " (" + some(c.dropped_values) + ")";
    if (!c.dropped_containers.empty())
      what += (what.empty() ? "" : " and ") + std::string("the container kind of ") + std::to_string(c.dropped_containers.size()) + " dict" +
              (c.dropped_containers.size() == 1 ? "" : "s") + " (" + some(c.dropped_containers) + ")";
    std::cerr << "ckpt: note: " << sink.format << " stores tensors only; dropped " << what << "\n";
  }
  if (a.json) {
    print_json(Json{{"command", "convert"}, {"input", {{"path", src.path}, {"format", src.format}}},
                    {"output", {{"path", a.operands[1]}, {"format", sink.format}}}, {"tensors", c.tensors},
                    {"values", c.values}, {"tensor_bytes", c.bytes},
                    {"dropped", {{"values", json_list(c.dropped_values)}, {"containers", json_list(c.dropped_containers)},
                                 {"objects", json_list(dropped_objects)}}}});
  } else {
    std::cout << "wrote " << a.operands[1] << " (" << sink.format << "): " << c.tensors << " tensors (" << human_bytes(c.bytes) << "), "
              << c.values << " values, from " << src.path << " (" << src.format << ")\n";
  }
  return exit_ok;
}

}  // namespace ckpt_cli
