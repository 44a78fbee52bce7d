// manager_digest — what the CheckpointManager's integrity digests cost, against the same
// operations without them, in the same run. For each format (native, safetensors, json):
//   save:    save_as alone | save_as under an io::DigestRecorder (what every manager save does:
//            the CRC-32 of each file taken as its bytes are written) | a second full read of
//            the saved file computing its CRC-32 (what a backend that writes other than through
//            io::File costs instead, and what digesting after the save would cost);
//   restore: load with the format's own verification (what restores did before digests) |
//            check_digests + load without it (what a restore does now).
// Operations are interleaved and repeated --runs times; prints median/min/max and the ratios
// of medians. fsync is off unless --fsync: page-cache speed, where a CPU cost shows the most.
//   manager_digest [--size 256M|BYTES] [--runs N] [--dir DIR] [--fsync] [--formats a,b,..] [--smoke]
#include <chrono>
#include <ckpt/ckpt.hpp>
#include <ckpt/manager.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using ckpt_bench::Stats;
using ckpt_bench::stats;
using clk = std::chrono::steady_clock;

namespace {
double ms_of(const std::function<void()>& f) {
  const auto t0 = clk::now();
  f();
  return std::chrono::duration<double, std::milli>(clk::now() - t0).count();
}
void print(const std::string& what, const Stats& s) {
  std::printf("  %-44s median %9.1f ms   min %9.1f   max %9.1f\n", what.c_str(), s.median, s.min, s.max);
}
}  // namespace

int main(int argc, char** argv) {
  ckpt_bench::ManagerBenchArgs args;
  args.dir = fs::temp_directory_path();
  bool fsync = false;
  std::vector<std::string> formats{"native", "safetensors", "json"};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--fsync") {
      fsync = true;
    } else if (std::string(argv[i]) == "--formats" && i + 1 < argc) {
      formats.clear();
      std::stringstream list(argv[++i]);
      for (std::string f; std::getline(list, f, ',');) formats.push_back(f);
    } else if (!args.take(argc, argv, i)) {
      std::cerr << "usage: manager_digest [--size 256M] [--runs 5] [--dir DIR] [--fsync] [--formats native,safetensors,json] [--smoke]\n";
      return 2;
    }
  }
  const std::uint64_t size = args.size;
  const int runs = args.runs;
  constexpr int tensors = 8;
  const ckpt::StateDict state = ckpt_bench::make_state(size, tensors);
  const ckpt_bench::OwnDir own(args.dir, "ckpt-bench-digest");  // deletes only what this run created
  const fs::path dir = own.path();
  ckpt::SaveOptions so;
  so.fsync = fsync;
  std::printf("state %.1f MiB in %d tensors, %d runs, dir %s (fsync %s)\n", static_cast<double>(size) / (1 << 20), tensors, runs,
              dir.c_str(), fsync ? "on" : "off");
  bool ok = true;
  for (const std::string& format : formats) {
    const ckpt::Backend b(format);
    const fs::path plain = dir / ("plain" + b.extension), digested = dir / ("digested" + b.extension);
    std::vector<double> save_ms, save_digest_ms, reread_ms, load_verify_ms, load_digest_ms;
    ckpt::CheckpointInfo info, undigested;  // the same bytes, with and without recorded digests
    undigested.path = plain;
    for (int r = 0; r < runs; ++r) {
      save_ms.push_back(ms_of([&] { b.save(plain, state, so); }));
      save_digest_ms.push_back(ms_of([&] {
        ckpt::io::DigestRecorder rec(digested);
        b.save(digested, state, so);
        info.files = ckpt::detail::digest_checkpoint(digested, rec.written());
      }));
      info.path = digested;
      reread_ms.push_back(ms_of([&] {
        const ckpt::io::File f = ckpt::io::File::open_read(plain);
        if (ckpt::detail::crc_of_file(f, f.size()) != info.files->at(0).crc32) ok = false;  // same bytes, same CRC
      }));
      load_verify_ms.push_back(ms_of([&] { (void)ckpt::detail::load_for_restore(b, undigested, {}, true); }));
      load_digest_ms.push_back(ms_of([&] { (void)ckpt::detail::load_for_restore(b, info, {}, true); }));
    }
    const auto s = stats(save_ms), sd = stats(save_digest_ms), rr = stats(reread_ms), lv = stats(load_verify_ms), ld = stats(load_digest_ms);
    std::printf("%s\n", format.c_str());
    print("save", s);
    print("save, digests taken while writing", sd);
    print("second read of the file for its CRC-32", rr);
    print("restore load, format's own verification", lv);
    print("restore load, digests checked first", ld);
    std::printf("  ratio save with digests / save (medians): %.3f; a second read would add %.3f\n", sd.median / s.median, rr.median / s.median);
    std::printf("  ratio restore with digests / format-verified restore (medians): %.3f\n", ld.median / lv.median);
  }
  std::printf("digests equal the CRC-32 of a second read: %s\n", ok ? "yes" : "NO");
  return ok ? 0 : 1;
}
