// bench_io — ckpt's I/O benchmark. Measures, on one state (default 1 GiB of f32 in 16
// tensors), against baselines taken in the same run:
//   raw write(2) of the same bytes in 64 MiB chunks (+ fsync, as ckpt's durable save does)
//   raw read(2) back into freshly allocated memory
//   ckpt save / eager load / mmap open + read of one tensor / verify, per backend
//   CRC-32 throughput, peak RSS of save and load (each in a fresh child process), and
//   compression ratio and speed of the zlib codec on typical tensors.
// Output: a table (median, min, max of --runs runs), explicit ratios, and a JSON file.
//   bench_io [--size 1G|32M|BYTES] [--runs N] [--dir DIR] [--json FILE] [--smoke]
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <ckpt/ckpt.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <ctime>
#include <vector>

#include "bench_util.hpp"

namespace fs = std::filesystem;
using ckpt_bench::make_state;
using ckpt_bench::parse_size;
using ckpt_bench::Stats;
using ckpt_bench::stats;
using clk = std::chrono::steady_clock;

namespace {

void check_rc(bool ok, const char* what) {
  if (!ok) {
    std::perror(what);
    std::exit(1);
  }
}

double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

void raw_write(const fs::path& p, const ckpt::StateDict& sd, bool sync) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  check_rc(fd >= 0, "open");
  for (const auto& [k, leaf] : sd.flatten()) {
    const auto b = leaf->tensor().bytes();
    for (std::size_t off = 0; off < b.size();) {
      const std::size_t n = std::min<std::size_t>(64u << 20, b.size() - off);
      const ssize_t w = ::write(fd, b.data() + off, n);
      check_rc(w > 0, "write");
      off += static_cast<std::size_t>(w);
    }
  }
  if (sync) check_rc(::fsync(fd) == 0, "fsync");
  ::close(fd);
}

std::uint64_t raw_read(const fs::path& p, const ckpt::StateDict& sd) {
  // Every buffer stays alive until all are read, as a load's tensors do: freeing each one at
  // once would let the allocator hand the same (already faulted-in) pages back every time.
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  check_rc(fd >= 0, "open");
  std::uint64_t sum = 0;
  std::vector<std::pair<std::byte*, std::size_t>> bufs;
  for (const auto& [k, leaf] : sd.flatten()) {
    const std::size_t n = leaf->tensor().nbytes();
    auto* buf = static_cast<std::byte*>(::operator new(n, std::align_val_t{64}));
    bufs.emplace_back(buf, n);
    for (std::size_t off = 0; off < n;) {
      const ssize_t r = ::read(fd, buf + off, std::min<std::size_t>(64u << 20, n - off));
      check_rc(r > 0, "read");
      off += static_cast<std::size_t>(r);
    }
    sum += static_cast<std::uint64_t>(buf[n / 2]);
  }
  ::close(fd);
  for (auto& [b, n] : bufs) ::operator delete(b, std::align_val_t{64});
  return sum;
}

/// Peak RSS (KiB) of `self --rss-op ARGS...` run as a fresh process, so it holds only what the
/// operation itself needs. The child reports its own VmHWM: ru_maxrss would not do, since it
/// survives exec and would start at the parent's peak.
long child_peak_rss_kib(const std::string& self, const std::vector<std::string>& args) {
  std::string cmd = "'" + self + "' --rss-op";
  for (const auto& x : args) cmd += " '" + x + "'";
  FILE* f = ::popen(cmd.c_str(), "r");
  check_rc(f != nullptr, "popen");
  long kib = -1;
  if (std::fscanf(f, "%ld", &kib) != 1) kib = -1;
  if (::pclose(f) != 0) return -1;
  return kib;
}

long self_hwm_kib() {
  std::ifstream st("/proc/self/status");
  std::string line;
  while (std::getline(st, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

/// The child side: `--rss-op save FORMAT PATH SIZE | load PATH | mmap PATH | idle`.
int rss_op(int argc, char** argv) {
  const std::string op = argv[2];
  if (op == "save") {
    const ckpt::StateDict sd = make_state(std::stoull(argv[5]));
    ckpt::SaveOptions so;
    so.format = argv[3];
    ckpt::save(argv[4], sd, so);
  } else if (op == "load") {
    const ckpt::StateDict sd = ckpt::load(argv[3]);
    if (sd.empty()) return 1;
  } else if (op == "mmap") {
    ckpt::LoadOptions o;
    o.mmap = true;
    const ckpt::StateDict m = ckpt::load(argv[3], o);
    const auto b = m.at(ckpt::KeyPath{"layers", "0.weight"}).tensor().bytes();
    std::uint64_t s = 0;
    for (std::size_t i = 0; i < b.size(); i += 4096) s += static_cast<std::uint64_t>(b[i]);
    if (s == 1) return 3;
  } else if (op == "idle") {
    const ckpt::StateDict sd = make_state(std::stoull(argv[3]));
    if (sd.empty()) return 1;
  }
  (void)argc;
  std::printf("%ld\n", self_hwm_kib());
  return 0;
}

/// First line of /proc/<file> that starts with `key`, after the colon ("" if none).
std::string proc_field(const char* file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) {
      const auto c = line.find(':');
      return c == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", c + 1));
    }
  return "";
}

/// Date, CPU, cores, memory and kernel, as the system reports them.
nlohmann::ordered_json machine_info() {
  char date[64] = "";
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  struct utsname u {};
  ::uname(&u);
  return {{"date", date}, {"cpu", proc_field("/proc/cpuinfo", "model name")}, {"cores", std::thread::hardware_concurrency()},
          {"memory", proc_field("/proc/meminfo", "MemTotal")}, {"kernel", std::string(u.sysname) + " " + u.release}};
}

struct Results {
  std::map<std::string, Stats> seconds;
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "--rss-op") return rss_op(argc, argv);
  // Keep freed memory in this process (glibc: no mmap'd chunks, no trimming). On virtual
  // machines that hand freed guest memory back to the host (free page reporting), whatever
  // runs right after a large free() pays for the host backing those pages again: measured
  // here, a 1 GiB native save took 1.26-1.35 s normally and 4.4-5.5 s right after freeing
  // 1 GiB. With this, every operation, baselines included, starts from the same state.
  ::mallopt(M_MMAP_MAX, 0);
  ::mallopt(M_TRIM_THRESHOLD, INT_MAX);
  const std::string self = fs::canonical("/proc/self/exe").string();
  std::uint64_t size = 1ull << 30;
  int runs = 5;
  fs::path dir = fs::temp_directory_path() / "ckpt-bench";
  fs::path json_out = "bench-results.json";
  bool smoke = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--size") size = parse_size(next());
    else if (a == "--runs") runs = std::stoi(next());
    else if (a == "--dir") dir = next();
    else if (a == "--json") json_out = next();
    else if (a == "--smoke") { smoke = true; size = 32ull << 20; runs = 1; }
    else { std::cerr << "usage: bench_io [--size 1G] [--runs 5] [--dir DIR] [--json FILE] [--smoke]\n"; return 2; }
  }
  // Work in a subdirectory of our own: at exit only what this run created is deleted, never
  // files the user already had in DIR (nor DIR itself unless this run created it).
  const ckpt_bench::OwnDir own(dir, "ckpt-bench");
  dir = own.path();
  const double gib = static_cast<double>(size) / (1ull << 30);
  std::printf("ckpt bench_io: %.3f GiB of f32 in 16 tensors, %d runs, dir %s%s\n", gib, runs, dir.c_str(), smoke ? " (smoke mode)" : "");
  const auto machine = machine_info();
  std::printf("machine: %s\n", machine.dump().c_str());

  const ckpt::StateDict sd = make_state(size);
  const std::uint64_t bytes = sd.tensor_bytes();
  Results res;
  // Every operation runs once per round, rounds repeat --runs times: interleaving keeps the
  // baselines and ckpt under the same disk and page-cache conditions (writeback is noisy).
  struct Op {
    std::string name;
    std::function<void()> run;
  };
  std::vector<Op> ops;
  std::uint32_t crc_sink = 0;
  std::uint64_t sink = 0;
  ops.push_back({"crc32", [&] {
                   for (const auto& [k, leaf] : sd.flatten()) crc_sink ^= ckpt::detail::crc32(leaf->tensor().bytes());
                 }});
  const fs::path raw = dir / "raw.bin";
  ops.push_back({"raw_write", [&] { fs::remove(raw); raw_write(raw, sd, true); }});
  ops.push_back({"raw_write_nosync", [&] { fs::remove(raw); raw_write(raw, sd, false); }});
  ops.push_back({"raw_read", [&] { sink += raw_read(raw, sd); }});

  // Formats measured at full size; JSON (base64 text) is only a readability format.
  std::vector<std::string> formats = {"native"};
  for (const char* f : {"safetensors", "npz", "pt"}) {
    bool known = false;
    ckpt::detail::for_each_format([&]<class F>(F) { known = known || ckpt::archive_traits<F>::name == std::string_view(f); });
    if (known) formats.push_back(f);
  }
  for (const auto& fmt : formats) {
    const std::string ext(ckpt::visit_format(fmt, []<class F>(F) { return std::string(ckpt::archive_traits<F>::extensions[0]); }));
    const fs::path p = dir / ("state" + ext);
    ckpt::SaveOptions so, nosync;
    so.format = nosync.format = fmt;
    nosync.fsync = false;
    // Each save replaces the previous round's file, as a training loop saving to one path
    // does; the raw baseline likewise removes its previous file before writing a new one.
    ops.push_back({"save_" + fmt, [=, &sd] { ckpt::save(p, sd, so); }});
    ops.push_back({"save_nosync_" + fmt, [=, &sd] { ckpt::save(p, sd, nosync); }});
    ops.push_back({"load_" + fmt, [=, &sink] { sink += ckpt::load(p).size(); }});
    if (fmt == "native")  // the same load without checksums: what verification costs
      ops.push_back({"load_noverify_" + fmt, [=, &sink] {
                       ckpt::LoadOptions o;
                       o.verify = false;
                       sink += ckpt::load(p, o).size();
                     }});
    ops.push_back({"mmap_one_" + fmt, [=, &sink] {
                     ckpt::LoadOptions o;
                     o.mmap = true;
                     const ckpt::StateDict m = ckpt::load(p, o);
                     const auto b = m.at(ckpt::KeyPath{"layers", "0.weight"}).tensor().bytes();
                     std::uint64_t s = 0;
                     for (std::size_t i = 0; i < b.size(); i += 4096) s += static_cast<std::uint64_t>(b[i]);
                     sink += s;
                   }});
    ops.push_back({"verify_" + fmt, [=] { ckpt::verify(p); }});
  }
  std::map<std::string, std::vector<double>> times;
  // Round 0 is a warm-up and not counted: on virtual machines the first touch of guest memory
  // that the host has not backed yet costs far more than later ones (measured here: a 16 MiB
  // write(2) into fresh page cache took 55-70 ms, into reused pages 6 ms).
  for (int r = -1; r < runs; ++r) {
    for (const auto& op : ops) {
      const auto t0 = clk::now();
      op.run();
      if (r >= 0) times[op.name].push_back(seconds_since(t0));
      // Untimed: write back what this operation left dirty, so that the next one does not
      // pay for it (writeback of earlier saves otherwise dominates the spread).
      ::sync();
    }
  }
  for (const auto& [name, v] : times) res.seconds[name] = stats(v);
  for (const auto& fmt : formats) {
    const std::string ext(ckpt::visit_format(fmt, []<class F>(F) { return std::string(ckpt::archive_traits<F>::extensions[0]); }));
    const fs::path p = dir / ("state" + ext);
    res.json["rss_kib"]["save_" + fmt] = child_peak_rss_kib(self, {"save", fmt, (dir / ("rss" + ext)).string(), std::to_string(size)});
    res.json["rss_kib"]["load_" + fmt] = child_peak_rss_kib(self, {"load", p.string()});
    res.json["rss_kib"]["mmap_one_" + fmt] = child_peak_rss_kib(self, {"mmap", p.string()});
  }
  // The same process holding just the state, doing nothing: the base the others add to.
  res.json["rss_kib"]["state_only"] = child_peak_rss_kib(self, {"idle", std::to_string(size)});

  // Compression: ratio and throughput of the zlib codec on typical tensors.
  {
    const std::int64_t n = static_cast<std::int64_t>(std::min<std::uint64_t>(size / 16, 64ull << 20) / 4);
    std::mt19937 g(3);
    std::normal_distribution<float> normal;
    ckpt::Tensor f32(ckpt::DType::f32, {n}), bf16(ckpt::DType::bf16, {n}), emb(ckpt::DType::f32, {n}), adam(ckpt::DType::f32, {n});
    for (auto& v : f32.mutable_values<float>()) v = normal(g) * 0.02f;
    for (auto& v : bf16.mutable_values<ckpt::bfloat16>()) v = ckpt::bfloat16(normal(g) * 0.02f);
    auto e = emb.mutable_values<float>();
    for (std::size_t i = 0; i < e.size(); ++i) e[i] = (i / 256) % 2 ? normal(g) : 0.0f;  // half the rows zero
    auto a = adam.mutable_values<float>();  // exp_avg_sq after 3 steps of N(0, 1e-3) gradients
    for (auto& v : a) {
      float m = 0;
      for (int s = 0; s < 3; ++s) { const float gr = normal(g) * 1e-3f; m = 0.999f * m + 0.001f * gr * gr; }
      v = m;
    }
    for (auto& [label, t] : std::vector<std::pair<std::string, ckpt::Tensor>>{{"random_normal_f32", f32}, {"random_normal_bf16", bf16}, {"adam_exp_avg_sq_f32", adam}, {"half_zero_embedding_f32", emb}}) {
      for (int level : {1, 6}) {
        ckpt::StateDict one;
        one["t"] = t;
        ckpt::SaveOptions z;
        z.codec = "zlib";
        z.compression_level = level;
        const fs::path p = dir / "z.ckpt";
        std::vector<double> save_s, load_s;
        for (int r = 0; r < std::max(1, runs / 2); ++r) {
          auto t0 = clk::now();
          ckpt::save(p, one, z);
          save_s.push_back(seconds_since(t0));
          t0 = clk::now();
          sink += ckpt::load(p).size();
          load_s.push_back(seconds_since(t0));
        }
        const double ratio = static_cast<double>(fs::file_size(p)) / static_cast<double>(t.nbytes());
        const double mb = static_cast<double>(t.nbytes()) / 1e6;
        auto& j = res.json["compression"][label]["level" + std::to_string(level)];
        j["size_ratio"] = ratio;
        j["save_MBps"] = mb / stats(save_s).median;
        j["load_MBps"] = mb / stats(load_s).median;
        std::printf("compression %-26s level %d: size %.3f of raw, save %.0f MB/s, load %.0f MB/s\n", label.c_str(), level, ratio, mb / stats(save_s).median, mb / stats(load_s).median);
      }
    }
  }

  // Table and ratios.
  std::printf("\n%-22s %10s %10s %10s %10s\n", "operation", "median s", "min s", "max s", "GB/s");
  for (const auto& [name, s] : res.seconds) {
    const double gbps = static_cast<double>(name.rfind("mmap_one", 0) == 0 ? bytes / 16 : bytes) / 1e9 / s.median;
    std::printf("%-22s %10.4f %10.4f %10.4f %10.2f\n", name.c_str(), s.median, s.min, s.max, gbps);
    res.json["seconds"][name] = {{"median", s.median}, {"min", s.min}, {"max", s.max}};
  }
  auto ratio = [&](const std::string& a, const std::string& b) { return res.seconds.at(b).median / res.seconds.at(a).median; };
  std::printf("\nratios (throughput relative to the baseline; higher is better, 1.0 = equal):\n");
  for (const auto& fmt : formats) {
    const double s = ratio("save_" + fmt, "raw_write"), sn = ratio("save_nosync_" + fmt, "raw_write_nosync"), l = ratio("load_" + fmt, "raw_read");
    std::printf("  %-12s save / raw write+fsync = %.3f   save(no fsync) / raw write = %.3f   eager load / raw read = %.3f   mmap one tensor = %.5f of raw read time\n",
                fmt.c_str(), s, sn, l, res.seconds.at("mmap_one_" + fmt).median / res.seconds.at("raw_read").median);
    res.json["ratios"][fmt] = {{"save_vs_raw_write", s}, {"save_nosync_vs_raw_write_nosync", sn}, {"load_vs_raw_read", l},
                               {"mmap_one_vs_raw_read_time", res.seconds.at("mmap_one_" + fmt).median / res.seconds.at("raw_read").median}};
  }
  const double crc_share = res.seconds.at("crc32").median / res.seconds.at("save_native").median;
  const double verify_share = 1 - res.seconds.at("load_noverify_native").median / res.seconds.at("load_native").median;
  std::printf("  native eager load without checksums / raw read = %.3f; verification is %.1f %% of an eager load's time\n",
              ratio("load_noverify_native", "raw_read"), 100 * verify_share);
  res.json["ratios"]["native"]["load_noverify_vs_raw_read"] = ratio("load_noverify_native", "raw_read");
  res.json["checksum_share_of_load"] = verify_share;
  std::printf("  crc32: %.2f GB/s; %.1f %% of a native save's time\n", static_cast<double>(bytes) / 1e9 / res.seconds.at("crc32").median, 100 * crc_share);
  std::printf("  peak RSS (KiB): ");
  for (auto& [k, v] : res.json["rss_kib"].items()) std::printf("%s=%s ", k.c_str(), v.dump().c_str());
  std::printf("(state = %llu KiB)\n", static_cast<unsigned long long>(bytes / 1024));
  res.json["machine"] = machine;
  res.json["state_bytes"] = bytes;
  res.json["runs"] = runs;
  res.json["crc32_GBps"] = static_cast<double>(bytes) / 1e9 / res.seconds.at("crc32").median;
  res.json["checksum_share_of_save"] = crc_share;
  std::ofstream(json_out) << res.json.dump(2) << "\n";
  std::printf("wrote %s\n", json_out.c_str());
  return (sink == 42 && crc_sink == 42) ? 3 : 0;  // keep the work observable
}
