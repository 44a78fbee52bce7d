// tools/ckpt.cpp — the `ckpt` command-line tool: look inside, compare, verify and convert
// checkpoints of every backend in ckpt::builtin_formats. This file parses the command line
// and turns every failure into one line on stderr and an exit code (docs/CLI.md):
// 0 ok, 1 differs (diff) / bad (verify), 2 unreadable or invalid input, usage error.
#include <charconv>   // numbers
#include <cmath>      // isfinite
#include <cstring>    // strcmp
#include <exception>  // std::exception
#include <iostream>   // std::cout, std::cerr
#include <new>        // std::bad_alloc

#include <ckpt/error.hpp>    // ckpt::error
#include <ckpt/version.hpp>  // version_string

#include "cli.hpp"

namespace ckpt_cli {
namespace {

constexpr const char* usage_text = R"(usage: ckpt <command> [--json] ...

commands:
  ls PATH                     format, every tensor (key, dtype, shape, bytes) and the metadata;
                              on a manager directory, its checkpoints (step, time, metrics, latest)
  info PATH                   totals, format version, codecs, alignment
  stats PATH [KEY...]         per tensor min, max, mean, std and counts of NaN, Inf, zeros
                              (KEY: a key path or a prefix of one; default: every tensor)
  diff A B [--rtol R] [--atol A]
                              keys only in A / only in B, dtype and shape changes, largest
                              differences; exit 0 when equal within tolerance, 1 otherwise
  verify PATH                 structure and checksums of a checkpoint or of every checkpoint in
                              a manager directory; exit 0 when good, 1 with the first bad entry
  convert IN OUT [--format F] [--codec raw|zlib]
                              rewrite IN with another backend (F, else OUT's extension)
  formats                     the backends this build knows

options:
  --json        machine-readable output on stdout (schema: docs/CLI.md)
  --inert-objects
                .pt files: read Python objects the file's pickle holds (argparse.Namespace,
                whole nn.Modules, any class) as inert records {"$class", "$args", "$state"}
                instead of refusing the file; nothing is imported or run either way
  -h, --help    this text          --version    the library version

exit status: 0 ok, 1 differs (diff) or bad (verify), 2 unreadable/invalid input or usage error.
A progress bar is drawn on stderr for long work when stderr is a terminal.
)";

double parse_tolerance(const std::string& name, const std::string& s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v) || v < 0)
    throw usage_error(name + " needs a non-negative number, got '" + s + "'");
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      if (a.command.empty()) a.command = arg;
      else a.operands.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto take = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) throw usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--json" && !has_value) a.json = true;
    else if (arg == "-h" || arg == "--help") a.command = "help";
    else if (arg == "--version") a.command = "version";
    else if (arg == "--rtol") a.rtol = parse_tolerance(arg, take());
    else if (arg == "--atol") a.atol = parse_tolerance(arg, take());
    else if (arg == "--format") a.format = take();
    else if (arg == "--codec") a.codec = take();
    else if (arg == "--inert-objects" && !has_value) a.inert_objects = true;
    else throw usage_error("unknown option '" + arg + "'");
  }
  if ((a.rtol || a.atol) && a.command != "diff") throw usage_error("--rtol and --atol apply to diff only");
  if ((!a.format.empty() || !a.codec.empty()) && a.command != "convert") throw usage_error("--format and --codec apply to convert only");
  if (a.inert_objects && a.command == "formats") throw usage_error("--inert-objects applies to commands that read a checkpoint");
  return a;
}

int run(const Args& a) {
  if (a.command == "help") {
    std::cout << usage_text;
    return exit_ok;
  }
  if (a.command == "version") {
    std::cout << "ckpt " << ckpt::version_string << "\n";
    return exit_ok;
  }
  if (a.command.empty()) throw usage_error("no command");
  if (a.command == "ls") return cmd_ls(a);
  if (a.command == "info") return cmd_info(a);
  if (a.command == "stats") return cmd_stats(a);
  if (a.command == "diff") return cmd_diff(a);
  if (a.command == "verify") return cmd_verify(a);
  if (a.command == "convert") return cmd_convert(a);
  if (a.command == "formats") return cmd_formats(a);
  throw usage_error("unknown command '" + a.command + "'");
}

}  // namespace
}  // namespace ckpt_cli

int main(int argc, char** argv) {
  using namespace ckpt_cli;
  try {
    const int rc = run(parse(argc, argv));
    std::cout.flush();
    return rc;
  } catch (const usage_error& e) {
    std::cerr << "ckpt: " << one_line(e.what()) << " (see 'ckpt --help')\n";
  } catch (const ckpt::error& e) {
    std::cerr << one_line(e.what()) << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "ckpt: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << "ckpt: " << one_line(e.what()) << "\n";
  }
  return exit_bad_input;
}
