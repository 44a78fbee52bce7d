// tools/common.cpp — the `ckpt` tool's progress bar and text/JSON formatting helpers.
#include <unistd.h>  // isatty

#include <charconv>  // CKPT_PROGRESS_DELAY
#include <cmath>     // isfinite
#include <cstdio>    // fputs
#include <cstdlib>   // getenv
#include <iostream>  // std::cout
#include <sstream>   // number text

#include "cli.hpp"

namespace ckpt_cli {

void print_json(const Json& doc) { std::cout << doc.dump(2) << '\n'; }

// ---- Progress ---------------------------------------------------------------------------

Progress::Progress(std::string label, std::uint64_t total)
    : label_(std::move(label)), total_(total), enabled_(::isatty(2) == 1), delay_(1.0) {
  if (const char* d = std::getenv("CKPT_PROGRESS_DELAY")) {
    double v = 0;
    const char* end = d + std::char_traits<char>::length(d);
    auto [p, ec] = std::from_chars(d, end, v);
    if (ec == std::errc{} && p == end && v >= 0 && std::isfinite(v)) delay_ = v;
  }
  start_ = last_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (drawn_) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }
}

void Progress::advance(std::uint64_t n) {
  done_ += n;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - start_).count() < delay_) return;
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done_ < total_) return;
  last_ = now;
  draw();
}

void Progress::draw() {
  constexpr int width = 30;
  const double frac = total_ ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : 1.0;
  const int fill = static_cast<int>(frac * width);
  std::string bar = "\r" + label_ + " [" + std::string(static_cast<std::size_t>(fill), '#') +
                    std::string(static_cast<std::size_t>(width - fill), '.') + "] " +
                    std::to_string(static_cast<int>(frac * 100)) + "% " + human_bytes(done_) + " / " + human_bytes(total_) + "\033[K";
  std::fputs(bar.c_str(), stderr);
  std::fflush(stderr);
  drawn_ = true;
}

// ---- formatting -------------------------------------------------------------------------

Json number_json(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return d;
}

std::string fmt_double(double d) {
  std::ostringstream s;
  s.precision(7);
  s << d;
  return s.str();
}

Json shape_json(const ckpt::Shape& s) {
  Json a = Json::array();
  for (auto d : s) a.push_back(d);
  return a;
}

std::string human_bytes(std::uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  std::ostringstream s;
  s.precision(v < 10 ? 2 : v < 100 ? 3 : 4);
  s << v << ' ' << units[u];
  return s.str();
}

std::string short_value(const ckpt::Value& v, std::size_t max) { return abbreviate(v.dump(), max); }

std::string abbreviate(std::string s, std::size_t max) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<std::size_t> w;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line = indent;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
  }
  return out;
}

}  // namespace ckpt_cli
