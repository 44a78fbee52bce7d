// ckpt/detail/json_parse.hpp — parsing JSON that came from a file, so possibly hostile: footers,
// headers, index files. One linear SAX pass builds the document itself (nlohmann's callback
// parser rescans containers and went quadratic on footers with tens of thousands of tensors),
// and as it goes it
//  - caps the nesting depth;
//  - counts the values and what the document will take in memory, and stops at a small
//    multiple of the text's size (json_memory_factor: footers take about 10 times their text,
//    the worst JSON about 28), so text never becomes much more memory than the bytes read;
//  - refuses duplicate keys when asked;
//  - checks the document against a JsonShape, the members a reader knows at each place: an
//    unknown member is an error (strict) or skipped without being built (lenient).
// Errors are format_errors: "<what>: <problem>" naming the file, the offset of the text, and
// where in the document it went wrong.
#pragma once

#include <cstddef>        // sizes
#include <cstdint>        // counts
#include <span>           // member lists
#include <string>         // keys, messages
#include <string_view>    // member names
#include <unordered_set>  // duplicate keys
#include <utility>        // std::move
#include <vector>         // frames

#include "../error.hpp"       // format_error
#include "../state_dict.hpp"  // Value

namespace ckpt::detail {

/// What a strict reader expects at one place of a document. For an object, the members it
/// knows (each with the shape of its value), and `others`, the shape of any other member (null:
/// other members are unknown). For an array, the shapes of its first items by position, then
/// `items` for the rest. A null shape takes any JSON; scalars ignore shapes (readers check types).
struct JsonShape {
  struct Member {
    std::string_view name;
    const JsonShape* shape = nullptr;
  };
  std::span<const Member> members{};
  const JsonShape* others = nullptr;
  const JsonShape* items = nullptr;
  std::span<const JsonShape* const> positions{};
};

/// Estimated bytes a parsed document may take per byte of its text (plus json_memory_floor).
inline constexpr std::uint64_t json_memory_factor = 24;
/// Memory any document may take whatever its size.
inline constexpr std::uint64_t json_memory_floor = std::uint64_t{1} << 20;

struct JsonLimits {
  /// Deepest nesting of arrays and objects.
  std::size_t max_depth = 528;
  /// A key repeated in one object is an error (else the last one wins).
  bool reject_duplicates = false;
  /// The members the reader knows (null: no check).
  const JsonShape* shape = nullptr;
  /// With a shape: an unknown member is an error; false: it is skipped, never built.
  bool strict = true;
  /// The document may take at most memory_factor × its size + json_memory_floor bytes.
  std::uint64_t memory_factor = json_memory_factor;
};

/// SAX handler that builds a Json document within JsonLimits (see the top of the file).
template <class Json>
class JsonBuilder {
 public:
  JsonBuilder(const JsonLimits& limits, std::uint64_t text_bytes)
      : lim_(limits), budget_(limits.memory_factor * text_bytes + json_memory_floor), shape_(limits.shape) {}

  Json result;
  std::string problem;  ///< why the parse stopped ("" on success)

  bool null() { return scalar(Json(nullptr)); }
  bool boolean(bool v) { return scalar(Json(v)); }
  bool number_integer(std::int64_t v) { return scalar(Json(v)); }
  bool number_unsigned(std::uint64_t v) { return scalar(Json(v)); }
  bool number_float(double v, const std::string&) { return scalar(Json(v)); }
  bool string(std::string& s) {
    if (skip_ || skipping_next()) return true;
    if (!charge(string_cost + heap_cost(s.size()))) return false;
    return scalar(Json(std::move(s)));
  }
  bool binary(typename Json::binary_t&) { return fail("binary values are not JSON"); }
  bool start_object(std::size_t) { return open(true); }
  bool key(std::string& k) {
    if (skip_) return true;
    Frame& f = frames_.back();
    f.key = std::move(k);
    if (lim_.reject_duplicates && !f.keys.insert(f.key).second) return fail("duplicate key '" + f.key + "'");
    f.child = nullptr;
    f.skip_child = false;
    if (f.shape) {
      bool known = false;
      for (const auto& m : f.shape->members)
        if (m.name == f.key) {
          f.child = m.shape;
          known = true;
        }
      if (!known && f.shape->others) {
        f.child = f.shape->others;
        known = true;
      }
      if (!known) {
        if (lim_.strict) return fail("unknown member '" + f.key + "'" + where());
        f.skip_child = true;
        return true;
      }
    }
    return charge(member_cost + heap_cost(f.key.size()));
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(false); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) { return fail(std::string("invalid JSON: ") + e.what()); }

 private:
  // Estimated bytes (measured with glibc and nlohmann 3.11): every value's slot, and on the heap
  // an object's map, each member's node with its key, an array's vector, a string.
  static constexpr std::uint64_t value_cost = sizeof(Json), object_cost = 64, member_cost = 80, array_cost = 32, string_cost = 48;
  static constexpr std::uint64_t heap_cost(std::size_t chars) { return chars > 15 ? chars + 17 : 0; }

  struct Frame {
    Frame(Json* n, const JsonShape* s) : node(n), shape(s) {}
    Json* node;
    const JsonShape* shape;
    std::size_t index = 0;              // arrays: items so far
    std::string key;                    // objects: the member being read
    const JsonShape* child = nullptr;   // objects: its shape
    bool skip_child = false;            // objects: an unknown member, skipped
    std::unordered_set<std::string> keys;  // objects: keys so far (duplicate checks)
  };

  bool fail(std::string why) {
    problem = std::move(why);
    return false;
  }
  bool charge(std::uint64_t bytes) {
    used_ += bytes;
    if (used_ <= budget_) return true;
    return fail("the document would take more than " + std::to_string(budget_) + " bytes of memory (" + std::to_string(lim_.memory_factor) +
                " times its size, plus " + std::to_string(json_memory_floor) + "), at " + std::to_string(values_) + " values" + where());
  }
  // " at tensors[3]": the container being read.
  std::string where() const {
    std::string s;
    for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.node->is_array()) s += "[" + std::to_string(f.index - 1) + "]";
      else s += (s.empty() ? "" : ".") + f.key;
    }
    return s.empty() ? std::string() : " at " + s;
  }
  // Where the next value goes and its shape; false when it is skipped.
  bool place(Json&& v, Json*& out, const JsonShape*& shape) {
    ++values_;
    if (frames_.empty()) {
      result = std::move(v);
      out = &result;
      shape = shape_;
      return true;
    }
    Frame& f = frames_.back();
    if (f.node->is_array()) {
      shape = f.shape && f.index < f.shape->positions.size() ? f.shape->positions[f.index] : f.shape ? f.shape->items : nullptr;
      ++f.index;
      auto& a = f.node->template get_ref<typename Json::array_t&>();
      a.push_back(std::move(v));
      out = &a.back();
      return true;
    }
    shape = f.child;
    auto& o = f.node->template get_ref<typename Json::object_t&>();
    if constexpr (requires { typename Json::object_t::Container; }) {  // ordered_json: a vector of members
      if (!lim_.reject_duplicates && !f.keys.insert(f.key).second) {
        for (auto& m : o)
          if (m.first == f.key) {
            out = &(m.second = std::move(v));
            break;
          }
        return true;
      }
      auto& items = static_cast<typename Json::object_t::Container&>(o);
      items.emplace_back(f.key, std::move(v));
      out = &items.back().second;
    } else {
      auto it = o.find(f.key);  // the last of equal keys wins, as in Json::parse
      if (it != o.end())
        it->second = std::move(v);
      else
        it = o.emplace(f.key, std::move(v)).first;
      out = &it->second;
    }
    return true;
  }
  bool skipping_next() { return !frames_.empty() && !frames_.back().node->is_array() && frames_.back().skip_child; }
  bool scalar(Json&& v) {
    if (skip_ || skipping_next()) return true;
    if (!charge(value_cost)) return false;
    Json* out;
    const JsonShape* shape;
    return place(std::move(v), out, shape);
  }
  bool open(bool object) {
    if (++depth_ > lim_.max_depth) return fail("JSON nested deeper than " + std::to_string(lim_.max_depth) + " levels");
    if (skip_ || skipping_next()) {
      ++skip_;
      return true;
    }
    if (!charge(value_cost + (object ? object_cost : array_cost))) return false;
    Json* out;
    const JsonShape* shape;
    place(object ? Json(Json::value_t::object) : Json(Json::value_t::array), out, shape);
    frames_.emplace_back(out, shape);
    return true;
  }
  bool close() {
    --depth_;
    if (skip_) {
      --skip_;
      return true;
    }
    frames_.pop_back();
    return true;
  }

  const JsonLimits& lim_;
  std::uint64_t budget_, used_ = 0, values_ = 0;
  const JsonShape* shape_;
  std::size_t depth_ = 0;
  std::size_t skip_ = 0;  // depth inside a skipped member
  std::vector<Frame> frames_;
};

/// Parse JSON text (as Json: Value, or nlohmann::ordered_json to keep member order) within
/// `limits`; format_error("<what>: <problem>", file, offset) when it is invalid or breaks one.
template <class Json = Value>
Json parse_json_checked(std::string_view text, const std::string& what, const std::string& file, std::uint64_t offset, const JsonLimits& limits = {}) {
  JsonBuilder<Json> b(limits, text.size());
  if (!Json::sax_parse(text.begin(), text.end(), &b)) throw format_error(what + ": " + b.problem, file, offset);
  return std::move(b.result);
}

/// Parse JSON from a file's bytes with the default limits; format_error (with file) on failure.
inline Value parse_json_limited(std::string_view text, const std::string& file, std::uint64_t base_offset = 0) {
  return parse_json_checked(text, "cannot parse JSON", file, base_offset);
}

}  // namespace ckpt::detail
