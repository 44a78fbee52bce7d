// dist_plan: how the coordinator's metadata work of a distributed save grows with the number of
// chunks (issue 18): make_plan (checks, tiling, balancing, layout), writing metadata.json, and
// reading it back (parse_metadata, what every loading rank does), for R ranks each holding one
// row block of each of T tensors (R × T chunks). No MPI and no data: the ranks' descriptions are
// built directly. Prints, per size, the median of --runs timings and the time per chunk; linear
// growth keeps the time per chunk flat (the last column is each size's per-chunk time over the
// smallest size's, in the same run). Every size checks that the metadata read back holds every
// chunk, and fails otherwise.
//   dist_plan [--runs 5] [--smoke]
#include <chrono>
#include <ckpt/dist.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace {
using clock_type = std::chrono::steady_clock;

/// Rank r's description of T tensors of [R * 4, 64] f32, rows split over R ranks.
ckpt::Value describe_rank(int r, int ranks, int tensors) {
  ckpt::Value ts = ckpt::Value::array();
  for (int t = 0; t < tensors; ++t) {
    const ckpt::Shape g{static_cast<std::int64_t>(ranks) * 4, 64};
    const auto b = ckpt::dist::split_box(g, 0, r, ranks);
    ts.push_back(ckpt::Value::array({"layer" + std::to_string(t) + ".weight", "f32", g, true,
                                     ckpt::Value::array({ckpt::Value::array({b.offsets, b.shape})}), nullptr}));
  }
  return ts;
}

template <class F>
double seconds(F&& f) {
  const auto t0 = clock_type::now();
  f();
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::stoi(argv[++i]);
    else if (a == "--smoke") smoke = true;
  }
  struct Size { int ranks, tensors; };
  std::vector<Size> sizes = {{16, 64}, {64, 160}, {256, 400}, {1024, 100}};  // 1 024 .. 102 400 chunks
  if (smoke) sizes = {{4, 8}, {8, 16}}, runs = 1;
  std::printf("%8s %8s %8s | %12s %12s %12s | %10s %10s\n", "ranks", "tensors", "chunks", "plan ms", "write ms", "parse ms",
              "us/chunk", "vs first");
  double first = 0;
  for (const auto& s : sizes) {
    std::vector<ckpt::Value> described;
    for (int r = 0; r < s.ranks; ++r) described.push_back(describe_rank(r, s.ranks, s.tensors));
    ckpt::Value tree = {{"dict", ckpt::Value::array()}, {"container", "dict"}};
    for (int t = 0; t < s.tensors; ++t)
      tree["dict"].push_back(ckpt::Value::array({"layer" + std::to_string(t) + ".weight", {{"tensor", t}}}));
    std::vector<double> plan_t, write_t, parse_t;
    std::size_t chunks = 0;
    for (int i = 0; i < runs; ++i) {
      ckpt::dist::Plan plan;
      plan_t.push_back(seconds([&] { plan = ckpt::dist::make_plan(described, tree, 1 << 20, "bench"); }));
      for (auto& t : plan.meta.tensors)
        for (auto& c : t.chunks) c.crc32.assign(ckpt::dist::block_count(c.nbytes, 1 << 20), 0);
      std::string text;
      write_t.push_back(seconds([&] { text = ckpt::dist::to_json(plan.meta).dump(); }));
      ckpt::dist::Metadata back;
      parse_t.push_back(seconds([&] { back = ckpt::dist::parse_metadata(text, "bench"); }));
      chunks = 0;
      for (const auto& t : back.tensors) chunks += t.chunks.size();
    }
    if (chunks != static_cast<std::size_t>(s.ranks) * static_cast<std::size_t>(s.tensors)) {
      std::printf("chunks round-trip: no (%zu of %d)\n", chunks, s.ranks * s.tensors);
      return 1;
    }
    const double plan = ckpt_bench::stats(plan_t).median, write = ckpt_bench::stats(write_t).median, parse = ckpt_bench::stats(parse_t).median;
    const double per = (plan + write + parse) / static_cast<double>(chunks) * 1e6;
    if (first == 0) first = per;
    std::printf("%8d %8d %8zu | %12.2f %12.2f %12.2f | %10.3f %10.2f\n", s.ranks, s.tensors, chunks, plan * 1e3, write * 1e3, parse * 1e3, per, per / first);
  }
  std::printf("chunks round-trip: yes (medians of %d runs)\n", runs);
}
