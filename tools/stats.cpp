// tools/stats.cpp — `ckpt stats FILE [KEY...]`: per tensor min, max, mean, standard deviation
// (population, over the finite elements) and counts of NaN, Inf and zeros. Tensors are read
// one at a time, so memory stays at about the largest tensor.
#include <array>     // value blocks
#include <cmath>     // isnan, isinf, sqrt, hypot
#include <iostream>  // std::cout
#include <limits>    // numeric_limits

#include "cli.hpp"
#include "numeric.hpp"

namespace ckpt_cli {
namespace {

struct Stats {
  std::uint64_t numel = 0, finite = 0, nan = 0, inf = 0, zeros = 0;
  double min = 0, max = 0, mean = 0, m2 = 0;
  bool integral = false, is_signed = false;
  std::int64_t imin = 0, imax = 0;
  std::uint64_t umin = 0, umax = 0;
};

/// Mean and variance over the finite values: each block of values (in cache) gets an exact
/// two-pass mean and sum of squared deviations, and blocks are merged with Chan et al.'s
/// pairwise update — stable like Welford's, without a division per element.
class Moments {
 public:
  void add(double x) {
    if (x < min_) min_ = x;
    if (x > max_) max_ = x;
    buf_[pending_++] = x;
    if (pending_ == buf_.size()) flush();
  }
  void finish(Stats& s) {
    flush();
    s.finite = n_, s.mean = mean_, s.m2 = m2_, s.min = min_, s.max = max_;
  }

 private:
  void flush() {
    if (!pending_) return;
    double m = 0;
    for (std::size_t k = 0; k < pending_; ++k) m += buf_[k];
    m /= static_cast<double>(pending_);
    double q = 0;
    for (std::size_t k = 0; k < pending_; ++k) q += (buf_[k] - m) * (buf_[k] - m);
    const double na = static_cast<double>(n_), nb = static_cast<double>(pending_), n = na + nb;
    const double delta = m - mean_;
    mean_ += delta * nb / n;
    m2_ += q + delta * delta * na * nb / n;
    n_ += pending_;
    pending_ = 0;
  }
  std::array<double, 4096> buf_{};
  std::size_t pending_ = 0;
  std::uint64_t n_ = 0;
  double mean_ = 0, m2_ = 0;
  double min_ = std::numeric_limits<double>::infinity(), max_ = -std::numeric_limits<double>::infinity();
};

/// Statistics of `t`; advances `progress` by t.nbytes() as it goes (per block of elements).
template <class T>
Stats compute(const ckpt::Tensor& t, Progress& progress) {
  constexpr std::uint64_t block = std::uint64_t{1} << 20;
  Stats s;
  Moments mo;
  const std::byte* d = t.data();
  s.numel = static_cast<std::uint64_t>(t.numel());
  if constexpr (std::is_integral_v<T>) {
    s.integral = true;
    s.is_signed = std::is_signed_v<T>;
    for (std::uint64_t i = 0; i < s.numel; ++i) {
      if (i % block == block - 1) progress.advance(block * sizeof(T));
      const T v = load_element<T>(d, i);
      if (v == T{}) ++s.zeros;
      if constexpr (std::is_signed_v<T>) {
        const auto w = static_cast<std::int64_t>(v);
        if (i == 0 || w < s.imin) s.imin = w;
        if (i == 0 || w > s.imax) s.imax = w;
      } else {
        const auto w = static_cast<std::uint64_t>(v);
        if (i == 0 || w < s.umin) s.umin = w;
        if (i == 0 || w > s.umax) s.umax = w;
      }
      mo.add(real_part(v));
    }
  } else {
    for (std::uint64_t i = 0; i < s.numel; ++i) {
      if (i % block == block - 1) progress.advance(block * sizeof(T));
      const T v = load_element<T>(d, i);
      const double re = real_part(v), im = imag_part(v);
      if (std::isnan(re) || std::isnan(im)) ++s.nan;
      else if (std::isinf(re) || std::isinf(im)) ++s.inf;
      else {
        if (re == 0 && im == 0) ++s.zeros;
        mo.add(is_complex_v<T> ? std::hypot(re, im) : re);  // complex: statistics of |z|
      }
    }
  }
  mo.finish(s);
  progress.advance(s.numel % block * sizeof(T));
  return s;
}

Json stats_json(const Stats& s) {
  Json j{{"numel", s.numel}, {"finite", s.finite}, {"nan", s.nan}, {"inf", s.inf}, {"zeros", s.zeros}};
  if (s.finite == 0) {
    j["min"] = j["max"] = j["mean"] = j["std"] = nullptr;
    return j;
  }
  if (s.integral && s.is_signed) j["min"] = s.imin, j["max"] = s.imax;
  else if (s.integral) j["min"] = s.umin, j["max"] = s.umax;
  else j["min"] = number_json(s.min), j["max"] = number_json(s.max);
  j["mean"] = number_json(s.mean);
  j["std"] = number_json(std::sqrt(s.m2 / static_cast<double>(s.finite)));
  return j;
}

bool selects(const std::string& key, const ckpt::KeyPath& p) {
  const std::string s = p.str(), jn = p.joined();
  auto under = [&](const std::string& x) { return x.size() > key.size() && x.compare(0, key.size(), key) == 0 && x[key.size()] == '.'; };
  return s == key || jn == key || under(s) || under(jn);
}

}  // namespace

int cmd_stats(const Args& a) {
  if (a.operands.empty()) throw usage_error("stats takes a checkpoint and optional keys");
  const Opened o = open_checkpoint(a.operands[0], a.load_options());
  std::vector<Leaf> chosen;
  for (const auto& l : o.leaves())
    if (l.is_tensor) chosen.push_back(l);
  if (a.operands.size() > 1) {
    std::vector<bool> keep(chosen.size(), false);
    for (std::size_t k = 1; k < a.operands.size(); ++k) {
      bool any = false;
      for (std::size_t i = 0; i < chosen.size(); ++i)
        if (selects(a.operands[k], chosen[i].path)) keep[i] = any = true;
      if (!any) throw ckpt::key_error("no tensor at or under this key", o.path, a.operands[k]);
    }
    std::vector<Leaf> sel;
    for (std::size_t i = 0; i < chosen.size(); ++i)
      if (keep[i]) sel.push_back(chosen[i]);
    chosen = std::move(sel);
  }
  std::uint64_t total = 0;
  for (const auto& l : chosen) total += o.entries[l.index].nbytes;
  Json list = Json::array();
  std::vector<std::vector<std::string>> rows{{"key", "dtype", "shape", "min", "max", "mean", "std", "nan", "inf", "zeros"}};
  {
    Progress progress("stats", total);
    for (const auto& l : chosen) {
      const auto& e = o.entries[l.index];
      const ckpt::Tensor t = o.read_tensor(l.index);
      const Stats s = dispatch(t.dtype(), [&]<class T>(type_tag<T>) { return compute<T>(t, progress); });
      Json j{{"key", l.path.str()}, {"dtype", std::string(ckpt::name(e.dtype))}, {"shape", shape_json(e.shape)}};
      j.update(stats_json(s));
      if (!a.json) {
        auto cell = [&](const char* k) {
          const Json& v = j[k];
          return v.is_null() ? std::string("-") : v.is_number_float() ? fmt_double(v.get<double>()) : v.is_string() ? v.get<std::string>() : v.dump();
        };
        rows.push_back({o.display(l.path), j["dtype"].get<std::string>(), ckpt::shape_string(e.shape),
                        cell("min"), cell("max"), cell("mean"), cell("std"), cell("nan"), cell("inf"), cell("zeros")});
      }
      list.push_back(std::move(j));
    }
  }
  if (a.json) print_json(Json{{"command", "stats"}, {"path", o.path}, {"format", o.format}, {"tensors", std::move(list)}});
  else std::cout << o.path << ": " << chosen.size() << " tensor" << (chosen.size() == 1 ? "" : "s") << "\n" << table(rows);
  return exit_ok;
}

}  // namespace ckpt_cli
