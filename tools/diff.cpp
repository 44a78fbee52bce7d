// tools/diff.cpp — `ckpt diff A B [--rtol R] [--atol A]`: leaves only in A or only in B,
// dtype/shape changes, and per tensor the largest absolute and relative difference. Leaves are
// matched by key path, then (for what is left, across flat and tree formats) by the keys
// joined with '.'. Elements a, b agree when |a - b| <= atol + rtol * |b| (NumPy's isclose, B
// is the reference); NaN agrees with NaN, an infinity only with the same infinity.
#include <algorithm>  // std::max, std::min
#include <cmath>     // isnan, isinf, hypot, fabs
#include <cstring>   // memcmp
#include <iostream>  // std::cout
#include <limits>    // infinity
#include <map>       // key lookups

#include "cli.hpp"
#include "numeric.hpp"

namespace ckpt_cli {
namespace {

struct TensorDiff {
  std::string status;  // equal | close | different | dtype | shape
  std::uint64_t mismatched = 0;
  double max_abs = 0, max_rel = 0;
};

/// Compare two tensors of one shape; advances `progress` by both sizes as it goes.
TensorDiff compare(const ckpt::Tensor& ta, const ckpt::Tensor& tb, double rtol, double atol, Progress& progress) {
  TensorDiff d;
  const bool same_dtype = ta.dtype() == tb.dtype();
  if (same_dtype && ta.nbytes() == tb.nbytes() && (ta.nbytes() == 0 || std::memcmp(ta.data(), tb.data(), ta.nbytes()) == 0)) {
    d.status = "equal";
    progress.advance(ta.nbytes() + tb.nbytes());
    return d;
  }
  const std::size_t es = ckpt::element_size(ta.dtype());
  const auto n = static_cast<std::size_t>(ta.numel());
  constexpr std::size_t chunk = 4096;
  std::vector<double> ra(chunk), ia(chunk), rb(chunk), ib(chunk);
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (std::size_t first = 0; first < n; first += chunk) {
    const std::size_t m = std::min(chunk, n - first);
    to_doubles(ta.dtype(), ta.data(), first, m, ra.data(), ia.data());
    to_doubles(tb.dtype(), tb.data(), first, m, rb.data(), ib.data());
    progress.advance(m * (es + ckpt::element_size(tb.dtype())));
    for (std::size_t k = 0; k < m; ++k) {
      if (same_dtype && std::memcmp(ta.data() + (first + k) * es, tb.data() + (first + k) * es, es) == 0) continue;
      const bool nan_a = std::isnan(ra[k]) || std::isnan(ia[k]), nan_b = std::isnan(rb[k]) || std::isnan(ib[k]);
      if (nan_a || nan_b) {
        if (!(nan_a && nan_b)) ++d.mismatched;  // NaN against a number: no finite difference to report
        continue;
      }
      if (ra[k] == rb[k] && ia[k] == ib[k]) continue;  // 0 vs -0, equal infinities
      const double ref = ib[k] == 0 ? std::fabs(rb[k]) : std::hypot(rb[k], ib[k]);
      if (std::isinf(ra[k]) || std::isinf(ia[k]) || std::isinf(rb[k]) || std::isinf(ib[k])) {
        ++d.mismatched;
        d.max_abs = d.max_rel = inf;
        continue;
      }
      const double abs = (ia[k] == 0 && ib[k] == 0) ? std::fabs(ra[k] - rb[k]) : std::hypot(ra[k] - rb[k], ia[k] - ib[k]);
      const double rel = ref > 0 ? abs / ref : inf;
      d.max_abs = std::max(d.max_abs, abs);
      d.max_rel = std::max(d.max_rel, rel);
      if (!(abs <= atol + rtol * ref)) ++d.mismatched;
    }
  }
  d.status = !same_dtype ? "dtype" : d.mismatched ? "different" : "close";
  return d;
}

const char* kind_of(const Leaf& l) { return l.is_tensor ? "tensor" : "value"; }

}  // namespace

int cmd_diff(const Args& a) {
  if (a.operands.size() != 2) throw usage_error("diff takes two checkpoints");
  const double rtol = a.rtol.value_or(0.0), atol = a.atol.value_or(0.0);
  const Opened A = open_checkpoint(a.operands[0], a.load_options());
  const Opened B = open_checkpoint(a.operands[1], a.load_options());
  const auto la = A.leaves(), lb = B.leaves();

  // Match leaves: exact key path first, then the joined name where it is unique on both sides.
  std::vector<std::optional<std::size_t>> match(la.size());
  std::vector<bool> used(lb.size(), false);
  std::map<std::string, std::size_t> by_path;
  for (std::size_t j = 0; j < lb.size(); ++j) by_path.emplace(lb[j].path.str(), j);
  for (std::size_t i = 0; i < la.size(); ++i)
    if (auto it = by_path.find(la[i].path.str()); it != by_path.end() && !used[it->second]) {
      match[i] = it->second;
      used[it->second] = true;
    }
  std::map<std::string, std::pair<int, std::size_t>> ja, jb;  // joined -> (count, index)
  for (std::size_t i = 0; i < la.size(); ++i)
    if (!match[i]) {
      auto& c = ja[la[i].path.joined()];
      ++c.first, c.second = i;
    }
  for (std::size_t j = 0; j < lb.size(); ++j)
    if (!used[j]) {
      auto& c = jb[lb[j].path.joined()];
      ++c.first, c.second = j;
    }
  for (const auto& [name, c] : ja)
    if (auto it = jb.find(name); c.first == 1 && it != jb.end() && it->second.first == 1) {
      match[c.second] = it->second.second;
      used[it->second.second] = true;
    }

  bool equal = true;
  Json only_a = Json::array(), only_b = Json::array(), tensors = Json::array(), values = Json::array(), kinds = Json::array();
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < la.size(); ++i)
    if (!match[i]) {
      equal = false;
      only_a.push_back(Json{{"key", la[i].path.str()}, {"kind", kind_of(la[i])}});
      lines.push_back("only in A: " + la[i].path.str() + " (" + kind_of(la[i]) + ")");
    }
  for (std::size_t j = 0; j < lb.size(); ++j)
    if (!used[j]) {
      equal = false;
      only_b.push_back(Json{{"key", lb[j].path.str()}, {"kind", kind_of(lb[j])}});
      lines.push_back("only in B: " + lb[j].path.str() + " (" + kind_of(lb[j]) + ")");
    }

  std::uint64_t total = 0;
  for (std::size_t i = 0; i < la.size(); ++i)
    if (match[i] && la[i].is_tensor && lb[*match[i]].is_tensor && A.entries[la[i].index].shape == B.entries[lb[*match[i]].index].shape)
      total += A.entries[la[i].index].nbytes + B.entries[lb[*match[i]].index].nbytes;
  std::size_t n_tensors = 0, n_values = 0;
  {
    Progress progress("diff", total);
    for (std::size_t i = 0; i < la.size(); ++i) {
      if (!match[i]) continue;
      const Leaf& x = la[i];
      const Leaf& y = lb[*match[i]];
      const std::string key = x.path.str();
      Json j{{"key", key}};
      if (y.path != x.path) j["key_b"] = y.path.str();
      if (x.is_tensor != y.is_tensor) {
        equal = false;
        j["a"] = kind_of(x), j["b"] = kind_of(y);
        kinds.push_back(std::move(j));
        lines.push_back("changed: " + key + ": " + kind_of(x) + " -> " + kind_of(y));
        continue;
      }
      if (!x.is_tensor) {
        ++n_values;
        const bool same = *x.value == *y.value;
        equal = equal && same;
        j["equal"] = same, j["a"] = Json(*x.value), j["b"] = Json(*y.value);
        values.push_back(std::move(j));
        if (!same) lines.push_back("changed: " + key + ": " + short_value(*x.value, 60) + " -> " + short_value(*y.value, 60));
        continue;
      }
      ++n_tensors;
      const auto& ea = A.entries[x.index];
      const auto& eb = B.entries[y.index];
      j["dtype_a"] = std::string(ckpt::name(ea.dtype)), j["dtype_b"] = std::string(ckpt::name(eb.dtype));
      j["shape_a"] = shape_json(ea.shape), j["shape_b"] = shape_json(eb.shape);
      TensorDiff d;
      if (ea.shape != eb.shape) {
        d.status = "shape";
      } else {
        d = compare(A.read_tensor(x.index), B.read_tensor(y.index), rtol, atol, progress);
      }
      j["status"] = d.status;
      j["numel"] = ea.shape == eb.shape ? Json(ea.nbytes / ckpt::element_size(ea.dtype)) : Json(nullptr);
      j["mismatched"] = d.mismatched;
      j["max_abs"] = number_json(d.max_abs), j["max_rel"] = number_json(d.max_rel);
      if (d.status != "equal" && d.status != "close") equal = false;
      if (d.status == "shape") lines.push_back("changed: " + key + ": shape " + ckpt::shape_string(ea.shape) + " -> " + ckpt::shape_string(eb.shape));
      if (d.status == "dtype") lines.push_back("changed: " + key + ": dtype " + j["dtype_a"].get<std::string>() + " -> " + j["dtype_b"].get<std::string>());
      if (d.status == "different" || (d.status == "dtype" && d.mismatched))
        lines.push_back("changed: " + key + ": " + std::to_string(d.mismatched) + " of " + j["numel"].dump() + " elements differ (max abs " +
                        fmt_double(d.max_abs) + ", max rel " + fmt_double(d.max_rel) + ")");
      tensors.push_back(std::move(j));
    }
  }
  if (a.json) {
    print_json(Json{{"command", "diff"}, {"a", {{"path", A.path}, {"format", A.format}}}, {"b", {{"path", B.path}, {"format", B.format}}},
                    {"rtol", rtol}, {"atol", atol}, {"equal", equal}, {"only_in_a", std::move(only_a)},
                    {"only_in_b", std::move(only_b)}, {"kind_changes", std::move(kinds)}, {"tensors", std::move(tensors)},
                    {"values", std::move(values)}});
  } else {
    std::cout << "A: " << A.path << " (" << A.format << ")\nB: " << B.path << " (" << B.format << ")\n";
    for (const auto& l : lines) std::cout << l << "\n";
    std::cout << (equal ? "equal" : "different") << ": " << n_tensors << " tensors and " << n_values << " values compared (rtol "
              << fmt_double(rtol) << ", atol " << fmt_double(atol) << ")\n";
  }
  return equal ? exit_ok : exit_differs;
}

}  // namespace ckpt_cli
